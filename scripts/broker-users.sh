#!/usr/bin/env bash
# Broker accounts for config/mosquitto-production.conf (docs/operations.md#broker-security).
#   broker-users.sh DIR add USER PASSWORD     an account in DIR/passwd (editors: USER = their userId)
#   broker-users.sh DIR remove USER
#   broker-users.sh DIR list
# Roles come from DIR/acl (config/mosquitto.acl): editors need no entry (its %u patterns give
# every account its own topics), morpheus-service, morpheus-trainer and morpheus-monitor have
# theirs. A running broker rereads both files on SIGHUP: kill -HUP "$(cat DIR/mosquitto.pid)".
# The password is the argument or, if it is "-", a line of standard input (kept out of shell
# history and of this script's arguments; mosquitto_passwd -b still gets it as an argument for
# the moment it runs — add accounts on the broker's host, not on a shared one).
set -euo pipefail
dir="${1:?usage: broker-users.sh DIR add|remove|list …}"
command="${2:?usage: broker-users.sh DIR add|remove|list …}"
mkdir -p "$dir"
[ -f "$dir/acl" ] || cp "$(dirname "$0")/../config/mosquitto.acl" "$dir/acl"
case "$command" in
  add)
    user="${3:?user}"
    password="${4:?password, or - to read it from standard input}"
    [ "$password" = "-" ] && IFS= read -r password
    # The user id pattern of the contract: an account name is a topic level.
    [[ "$user" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || { echo "broker-users.sh: $user is not a valid user id" >&2; exit 2; }
    if [ -f "$dir/passwd" ]; then mosquitto_passwd -b "$dir/passwd" "$user" "$password"; else mosquitto_passwd -c -b "$dir/passwd" "$user" "$password"; fi
    # The broker reads it after dropping to the mosquitto user.
    chmod 640 "$dir/passwd"; chgrp mosquitto "$dir/passwd" 2>/dev/null || chmod 644 "$dir/passwd"
    ;;
  remove)
    mosquitto_passwd -D "$dir/passwd" "${3:?user}"
    ;;
  list)
    cut -d: -f1 "$dir/passwd" 2>/dev/null || true
    ;;
  *)
    echo "usage: broker-users.sh DIR add|remove|list …" >&2; exit 2
    ;;
esac
