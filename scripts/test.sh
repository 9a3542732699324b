#!/usr/bin/env bash
# Runs the whole test suite against a private Mosquitto and PostgreSQL:
# the same set-up as run.sh, a fresh test database, then `swift test`.
# It stops the broker and database again if it started them.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

start_private_services

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
