#!/usr/bin/env bash
# Writes Sources/morpheus-feedback/link-order.txt: the functions the service runs, hottest first,
# which the linker lays out side by side at the front of the executable (Package.swift,
# docs/performance.md "Resident memory: the code the service runs"). Run it again after large
# changes: a name the file lists that a build lacks is skipped, and code it does not list still
# links, only scattered again.
#
# How: the release service (Swift runtime linked statically, debug information stripped for
# valgrind 3.19) runs under callgrind with names left mangled, as the linker knows them, while
# `morpheus-bench footprint` sends it corrections in large windows (batches split into
# concurrent chunks) and in small ones, and /metrics and /health are read every second. Every
# function that ran in the service's own executable is listed, by instructions spent in it.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

start_private_services
ensure_packages valgrind binutils curl
export_pseudonym_secret

log "building (release, Swift runtime linked statically)"
swift build -c release --static-swift-stdlib --product morpheus-feedback
swift build -c release --static-swift-stdlib --product morpheus-bench
bin="$(swift build -c release --static-swift-stdlib --show-bin-path)"

work="$(mktemp -d)"
scraper=""
trap 'status=$?; [ -n "$scraper" ] && kill "$scraper" 2>/dev/null; rm -rf "$work"; (exit "$status"); stop_started_services' EXIT
# Beside the original, so the service finds its resource bundles.
strip --strip-debug -o "$bin/morpheus-feedback-nodebug" "$bin/morpheus-feedback"
cat > "$work/service" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$work/callgrind.%p" \
  "$bin/morpheus-feedback-nodebug" "\$@"
EOF
chmod +x "$work/service"

metrics_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export MORPHEUS_METRICS_PORT="$metrics_port" MORPHEUS_METRICS_HOST=127.0.0.1
# The service is killed when a footprint ends: callgrind writes only what it was told to dump.
(
  while sleep 1; do
    curl -fsS "http://127.0.0.1:$metrics_port/metrics" >/dev/null 2>&1 || true
    curl -fsS "http://127.0.0.1:$metrics_port/health" >/dev/null 2>&1 || true
    for pid in $(pgrep -f "callgrind-out-file=$work/" || true); do callgrind_control --dump "$pid" >/dev/null 2>&1 || true; done
  done
) &
scraper=$!

database_url="$(bash scripts/postgres.sh url)"
for window in 500 50; do
  log "profiling the service: 3000 corrections in windows of $window"
  "$bin/morpheus-bench" footprint --service-binary "$work/service" --broker-port "$MORPHEUS_BROKER_PORT" \
    --database-url "$database_url" --corrections 3000 --window "$window" --output "$work/footprint" >/dev/null
done

nm --defined-only "$bin/morpheus-feedback" | awk '$2 ~ /^[tT]$/ { print $3 }' > "$work/defined"
python3 - "$work" Sources/morpheus-feedback/link-order.txt <<'EOF'
import collections, glob, re, sys
work, target = sys.argv[1], sys.argv[2]
defined = set(line.strip() for line in open(f"{work}/defined"))
spent = collections.Counter()
for path in glob.glob(f"{work}/callgrind.*"):
    names, function, after_call = {}, None, False
    for line in open(path, errors="replace"):
        if line.startswith(("fn=", "cfn=")):
            match = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if match.group(2):
                names[match.group(1)] = re.sub(r"'\d+$", "", match.group(2))  # recursion levels
            if line.startswith("fn="):
                function = names.get(match.group(1))
            continue
        if line.startswith("calls="):
            after_call = True  # the next cost line is the call's inclusive cost
            continue
        if function and line[:1].isdigit():
            if after_call:
                after_call = False
            else:
                fields = line.split()
                if len(fields) >= 2:
                    spent[function] += int(fields[1])
ordered = [name for name, _ in spent.most_common() if name in defined]
if len(ordered) < 1000:
    sys.exit(f"only {len(ordered)} functions of the executable seen: the profile did not run")
with open(target, "w") as out:
    out.write("\n".join(ordered) + "\n")
print(f"{len(ordered)} functions written to {target}")
EOF
# SwiftPM does not see the file as an input of the link: make the next builds link anew.
rm -f "$bin/morpheus-feedback" "$bin/morpheus-feedback-nodebug" "$(swift build --show-bin-path)/morpheus-feedback"
