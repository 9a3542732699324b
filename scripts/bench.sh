#!/usr/bin/env bash
# Runs the benchmark (docs/performance.md): installs missing Debian packages, starts the private
# Mosquitto and PostgreSQL unless they run, builds the service and the benchmark in release
# mode and runs morpheus-bench, which creates its own database, starts the echo responder and
# the service instances itself, and writes bench-results/result.{json,md} and latency.svg.
# Extra arguments go to morpheus-bench (e.g. --quick, --soak-seconds 0, --connections 4,16).
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

start_private_services

log "building (release)"
swift build -c release --product morpheus-feedback
swift build -c release --product morpheus-bench
bin="$(swift build -c release --show-bin-path)"

"$bin/morpheus-bench" run --broker-port "$MORPHEUS_BROKER_PORT" \
  --database-url "$(bash scripts/postgres.sh url)" --output "$REPO_ROOT/bench-results" "$@"
