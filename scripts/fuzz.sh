#!/usr/bin/env bash
# Fuzzes the strict JSON parser and the validators with libFuzzer for a bounded time:
#   bash scripts/fuzz.sh [SECONDS]      (default 300)
# Builds Tests/Fuzz with -sanitize=fuzzer,address, runs it on a working copy of the committed
# seed corpus (Tests/Fuzz/corpus; new interesting inputs stay in the state folder), and fails
# on a crash, a broken invariant (see ValidationInvariants), a hang over 10 s per input, an
# allocation over 64 MiB or an RSS over 1 GiB. Crash inputs land in <state>/fuzz/artifacts.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
ensure_swift
seconds="${1:-300}"
work="$(state_dir)/fuzz"
mkdir -p "$work/corpus" "$work/artifacts"
cp -n Tests/Fuzz/corpus/* "$work/corpus/" 2>/dev/null || true

log "building the fuzz target (libFuzzer + AddressSanitizer)"
swift build --package-path Tests/Fuzz --scratch-path "$REPO_ROOT/.build-fuzz" -c release \
  -Xswiftc -sanitize=fuzzer,address
binary="$REPO_ROOT/.build-fuzz/release/FuzzValidation"

log "fuzzing for ${seconds}s"
# Inputs up to 300 KB reach past the 256 KiB payload limit; -malloc_limit_mb bounds any one
# allocation well above what a payload of that size may need.
"$binary" "$work/corpus" Tests/Fuzz/corpus -max_total_time="$seconds" -max_len=307200 \
  -timeout=10 -malloc_limit_mb=64 -rss_limit_mb=1024 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" 2>&1 | tee "$work/last-run.log" | grep -E '^(#[0-9]+ +(INITED|DONE|pulse)|stat::|==[0-9]+==|SUMMARY|Done)' || true
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  tail -n 40 "$work/last-run.log" >&2
  die "the fuzzer found a problem (exit $status); inputs in $work/artifacts"
fi
log "no crash, no hang, no oversized allocation ($(grep -c . <(ls "$work/corpus")) inputs in the corpus)"
