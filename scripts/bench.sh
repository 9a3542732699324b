#!/usr/bin/env bash
# Runs the benchmark (docs/performance.md): installs missing Debian packages, starts the private
# PostgreSQL unless it runs and a fresh broker of its own (port 18831, empty state, so what tests
# left in the everyday broker's persistence cannot skew it), builds the service and the benchmark
# in release mode and runs morpheus-bench, which creates its own database, starts the echo
# responder and the service instances itself, and writes bench-results/result.{json,md} and
# latency.svg. Extra arguments go to morpheus-bench (e.g. --quick, --soak-seconds 0).
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

start_private_services
export_pseudonym_secret

bench_port="${MORPHEUS_BENCH_BROKER_PORT:-18831}"
bench_broker="$(state_dir)/bench-broker"
bash scripts/broker.sh stop "$bench_broker" "$bench_port" >/dev/null 2>&1 || true
rm -rf "$bench_broker"
bash scripts/broker.sh start "$bench_broker" "$bench_port"
# Keeps the benchmark's exit status for stop_started_services, which exits with it.
trap 'status=$?; bash scripts/broker.sh stop "$bench_broker" "$bench_port" || true; (exit "$status"); stop_started_services' EXIT

log "building (release)"
swift build -c release --product morpheus-feedback
swift build -c release --product morpheus-bench
bin="$(swift build -c release --show-bin-path)"

"$bin/morpheus-bench" run --broker-port "$bench_port" \
  --database-url "$(bash scripts/postgres.sh "${MORPHEUS_BENCH_DATABASE_LINK:-url}")" --output "$REPO_ROOT/bench-results" "$@"
