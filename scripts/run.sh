#!/usr/bin/env bash
# Sets everything up and runs the service in the foreground:
# installs missing Debian packages, starts a private Mosquitto and PostgreSQL (loopback,
# non-default ports, data in a git-ignored folder), builds, migrates and runs morpheus-feedback.
# Ctrl-C stops the service cleanly, then the broker and database this run started.
# Extra arguments go to morpheus-feedback (e.g. --instance-id dev-2 --log-level debug).
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

start_private_services
export_pseudonym_secret

configuration="${MORPHEUS_BUILD_CONFIGURATION:-debug}"
log "building ($configuration)"
swift build -c "$configuration" --product morpheus-feedback

export MORPHEUS_DATABASE_URL="${MORPHEUS_DATABASE_URL:-$(bash scripts/postgres.sh url)}"
export MORPHEUS_BROKER_PORT
log "starting morpheus-feedback (Ctrl-C to stop)"
# Not exec: the EXIT trap must run after the service has stopped.
"$(swift build -c "$configuration" --show-bin-path)/morpheus-feedback" --config config/morpheus.json "$@"
