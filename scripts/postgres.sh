#!/usr/bin/env bash
# A private PostgreSQL cluster: postgres.sh start|stop|restart|status|url|socket-url [DIR] [PORT]
# Without DIR/PORT it manages the project's own cluster (state folder, $MORPHEUS_PG_PORT).
# The cluster is created on first start with a role 'morpheus' whose random password is kept
# in DIR/password; `url` prints the database URL to use.
source "$(dirname "$0")/lib.sh"

cmd="${1:-status}"
dir="${2:-$(state_dir)/postgres}"
port="${3:-$MORPHEUS_PG_PORT}"
data="$dir/data"
bin="$(pg_bin)"

url() { printf 'postgres://morpheus:%s@127.0.0.1:%s/morpheus' "$(cat "$dir/password")" "$port"; }
# The same database over the Unix-domain socket: no TCP stack between processes on one machine.
socket_url() { printf 'postgres://morpheus:%s@/morpheus?host=%s&port=%s' "$(cat "$dir/password")" "$dir" "$port"; }
ready() { "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; }
running() { [ -f "$data/postmaster.pid" ] && as_pg_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

init_cluster() {
  mkdir -p "$dir"
  umask 077
  head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password"
  umask 022
  if is_root; then chown -R postgres "$dir"; fi
  as_pg_owner "$bin/initdb" -D "$data" -U morpheus --pwfile="$dir/password" \
    --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  chmod 644 "$dir/password"
}

# Write-heavy tuning (docs/performance.md): with the defaults (1 GB of WAL) a checkpoint starts
# every ~30 s at full load, its fsyncs stall commits for hundreds of milliseconds and the
# full-page images after each one double the WAL. Durability is untouched (fsync and
# synchronous_commit stay on).
# MORPHEUS_PG_PROFILE=stock starts a cluster with PostgreSQL's own defaults instead (the benchmark
# measures both). pg_stat_statements is loaded in both: the benchmark counts statements with it;
# every autovacuum is logged, to be read beside the benchmark's per-second timeline.
TUNING="-c shared_buffers=256MB -c max_wal_size=8GB -c checkpoint_timeout=15min -c checkpoint_completion_target=0.9"
if [ "${MORPHEUS_PG_PROFILE:-tuned}" = stock ]; then TUNING=""; fi
TUNING="$TUNING -c shared_preload_libraries=pg_stat_statements -c log_autovacuum_min_duration=0"

# Every service instance opens its whole pool at start-up (database.poolSize, 4) and one more
# for housekeeping; the test suite runs dozens of instances at once.
start() {
  if running; then return 0; fi
  [ -f "$data/PG_VERSION" ] || init_cluster
  as_pg_owner "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='$dir' -c max_connections=400 $TUNING" start >/dev/null \
    || { tail -n 30 "$dir/postgres.log" >&2; die "PostgreSQL did not start on port $port"; }
  wait_until 30 ready || die "PostgreSQL is not accepting connections on port $port"
  PGPASSWORD="$(cat "$dir/password")" "$bin/psql" -h 127.0.0.1 -p "$port" -U morpheus -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = 'morpheus'" | grep -q 1 \
    || PGPASSWORD="$(cat "$dir/password")" "$bin/createdb" -h 127.0.0.1 -p "$port" -U morpheus morpheus
  log "PostgreSQL listening on 127.0.0.1:$port"
}

stop() {
  if running; then
    as_pg_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    log "PostgreSQL on port $port stopped"
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if running && ready; then echo "running on 127.0.0.1:$port"; else echo "stopped"; exit 3; fi ;;
  url) url ;;
  socket-url) socket_url ;;
  *) die "usage: postgres.sh start|stop|restart|status|url|socket-url [DIR] [PORT]" ;;
esac
