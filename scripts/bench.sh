#!/usr/bin/env bash
# Runs the benchmark (docs/performance.md): installs missing Debian packages (valgrind too),
# starts the private PostgreSQL unless it runs, a second PostgreSQL with the stock settings
# (port 15433) and a fresh broker of its own (port 18831, empty state, so what tests left in the
# everyday broker's persistence cannot skew it), builds the service and the benchmark in release
# mode with the Swift runtime linked statically (as the container image ships it, and the only
# form valgrind 3.19 can run) and runs morpheus-bench, which creates its own databases, starts
# the echo responder and the service instances itself, and writes bench-results/result.{json,md},
# latency.svg and timeline.svg. Extra arguments go to morpheus-bench (e.g. --quick,
# --soak-seconds 0); MORPHEUS_BENCH_STOCK=0 leaves the stock PostgreSQL out.
#
# Run as root it also sets the kernel's background writeback to the value docs/operations.md
# recommends for a PostgreSQL host ("Disk writeback": vm.dirty_background_bytes = 8 MiB) and
# puts the old values back when it ends; MORPHEUS_BENCH_WRITEBACK=as-is measures the machine
# as it is instead. The report names the settings it ran with.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

start_private_services
ensure_packages valgrind binutils
export_pseudonym_secret

bench_port="${MORPHEUS_BENCH_BROKER_PORT:-18831}"
bench_broker="$(state_dir)/bench-broker"
stock_port="${MORPHEUS_PG_STOCK_PORT:-15433}"
stock_dir="$(state_dir)/postgres-stock"
bash scripts/broker.sh stop "$bench_broker" "$bench_port" >/dev/null 2>&1 || true
rm -rf "$bench_broker"
bash scripts/broker.sh start "$bench_broker" "$bench_port"
stock_args=()
if [ "${MORPHEUS_BENCH_STOCK:-1}" != 0 ]; then
  MORPHEUS_PG_PROFILE=stock bash scripts/postgres.sh restart "$stock_dir" "$stock_port"
  stock_args=(--stock-database-url "$(bash scripts/postgres.sh url "$stock_dir" "$stock_port")")
fi
writeback_restore=true
if [ "${MORPHEUS_BENCH_WRITEBACK:-recommended}" = recommended ] && [ -w /proc/sys/vm/dirty_background_bytes ]; then
  # Writing one of the pair zeroes the other: put back whichever was in force.
  if [ "$(cat /proc/sys/vm/dirty_background_bytes)" != 0 ]; then
    writeback_restore="echo $(cat /proc/sys/vm/dirty_background_bytes) > /proc/sys/vm/dirty_background_bytes"
  else
    writeback_restore="echo $(cat /proc/sys/vm/dirty_background_ratio) > /proc/sys/vm/dirty_background_ratio"
  fi
  if (echo $((8 << 20)) > /proc/sys/vm/dirty_background_bytes) 2>/dev/null; then
    log "kernel writeback: vm.dirty_background_bytes = 8 MiB for the run (docs/operations.md, \"Disk writeback\")"
  else
    writeback_restore=true
    log "kernel writeback left as it is (not writable here)"
  fi
fi
# Keeps the benchmark's exit status for stop_started_services, which exits with it.
trap 'status=$?; eval "$writeback_restore" || true
      bash scripts/broker.sh stop "$bench_broker" "$bench_port" || true
      bash scripts/postgres.sh stop "$stock_dir" "$stock_port" || true; (exit "$status"); stop_started_services' EXIT

log "building (release, Swift runtime linked statically)"
swift build -c release --static-swift-stdlib --product morpheus-feedback
swift build -c release --static-swift-stdlib --product morpheus-bench
bin="$(swift build -c release --static-swift-stdlib --show-bin-path)"

"$bin/morpheus-bench" run --broker-port "$bench_port" --callgrind "${stock_args[@]}" \
  --database-url "$(bash scripts/postgres.sh "${MORPHEUS_BENCH_DATABASE_LINK:-url}")" --output "$REPO_ROOT/bench-results" "$@"
