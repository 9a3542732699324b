"""Loads a dataset version folder the way trainers do, with the `datasets` package, offline.

Usage: load_dataset.py FOLDER
Prints JSON: per split its row count and column names, loaded twice — from the folder's card
(README.md `configs`, as a dataset hub reads it) and with the generic json builder on the files.
"""
import json
import os
import sys
import tempfile

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="hf-home-"))

import datasets  # noqa: E402

folder = sys.argv[1]
result = {}
by_card = datasets.load_dataset(folder)
result["card"] = {split: {"rows": by_card[split].num_rows, "columns": sorted(by_card[split].column_names)} for split in by_card}
files = {split: os.path.join(folder, "data", f"{split}.jsonl") for split in ("train", "validation")}
by_json = datasets.load_dataset("json", data_files=files)
result["json"] = {split: {"rows": by_json[split].num_rows, "columns": sorted(by_json[split].column_names)} for split in by_json}
first = by_json["train"][0] if by_json["train"].num_rows else {}
result["first"] = first
print(json.dumps(result, default=str))
