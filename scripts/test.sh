#!/usr/bin/env bash
# Runs the whole test suite against a private Mosquitto and PostgreSQL:
# the same set-up as run.sh, a fresh test database, then `swift test`; then the MQTT binding's
# and the delivery suites again under ThreadSanitizer (where the concurrency is), and a short
# libFuzzer run of the parser and validators (scripts/fuzz.sh).
# Arguments go to `swift test` (e.g. --filter X); with arguments, or MORPHEUS_TEST_QUICK=1, only
# the plain run happens. It stops the broker and database again if it started them.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

start_private_services
export_pseudonym_secret
ensure_python_tools

# A fresh database for every run, so tests never see a previous run's rows.
url="$(bash scripts/postgres.sh url)"
PGPASSWORD="$(cat "$(state_dir)/postgres/password")" psql -q -h 127.0.0.1 -p "$MORPHEUS_PG_PORT" -U morpheus -d postgres \
  -c "DROP DATABASE IF EXISTS morpheus_test WITH (FORCE)" -c "CREATE DATABASE morpheus_test" >/dev/null
export MORPHEUS_TEST_DATABASE_URL="${url%/morpheus}/morpheus_test"
export MORPHEUS_TEST_BROKER_PORT="$MORPHEUS_BROKER_PORT"

log "building (warnings are errors)"
swift build --build-tests
log "running tests"
swift test --skip-build "$@"
if [ $# -gt 0 ] || [ "${MORPHEUS_TEST_QUICK:-0}" = 1 ]; then exit 0; fi

# The service and CLI processes these suites start are ThreadSanitizer builds too.
log "building with ThreadSanitizer"
swift build --build-tests --sanitize=thread --scratch-path .build-tsan
log "MQTT binding and delivery suites under ThreadSanitizer"
# Every process writes its reports to a file of its own (the services under test print to pipes
# the tests read), so a race in any of them fails the run.
tsan_dir="$(state_dir)/tsan"
rm -rf "$tsan_dir" && mkdir -p "$tsan_dir"
TSAN_OPTIONS="history_size=4 log_path=$tsan_dir/report" swift test --skip-build --sanitize=thread --scratch-path .build-tsan \
  --filter 'MQTTTests\.|DeliveryTests|DatabaseTroubleTests|BrokerRestartTests|ReplySpaceTests'
if compgen -G "$tsan_dir/report*" >/dev/null; then
  cat "$tsan_dir"/report* >&2
  die "ThreadSanitizer reported a problem (reports above, in $tsan_dir)"
fi
log "ThreadSanitizer: no report"

bash scripts/fuzz.sh "${MORPHEUS_FUZZ_SECONDS:-60}"
