# Shared helpers for the project's scripts. Sourced, never run.
# Everything lives in a git-ignored state folder; services listen on loopback, non-default ports.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MORPHEUS_BROKER_PORT="${MORPHEUS_BROKER_PORT:-18830}"
MORPHEUS_PG_PORT="${MORPHEUS_PG_PORT:-15432}"

log() { printf '[morpheus] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# The state folder must be reachable by the unprivileged users the servers drop to when we are
# root (postgres, mosquitto). A checkout under a private home folder is not, so fall back to
# a folder under /var/tmp named after the checkout.
state_dir() {
  local dir="$REPO_ROOT/.local"
  if is_root; then
    mkdir -p "$dir"
    if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
      dir="/var/tmp/morpheus-$(printf '%s' "$REPO_ROOT" | md5sum | cut -c1-12)"
    fi
  fi
  mkdir -p "$dir"
  chmod 755 "$dir"
  printf '%s' "$dir"
}

# The local installation's pseudonym secret (privacy.pseudonymSecret): made once, kept in the
# state folder (git-ignored, mode 600), exported unless the caller set one. The service refuses
# the public development default.
export_pseudonym_secret() {
  [ -n "${MORPHEUS_PRIVACY_PSEUDONYM_SECRET:-}" ] && return 0
  local file
  file="$(state_dir)/pseudonym-secret"
  if [ ! -s "$file" ]; then
    (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$file")
  fi
  MORPHEUS_PRIVACY_PSEUDONYM_SECRET="$(cat "$file")"
  export MORPHEUS_PRIVACY_PSEUDONYM_SECRET
}

# Installs the Debian packages the project needs (and any named), only those that are missing.
ensure_packages() {
  local wanted=(mosquitto mosquitto-clients libmosquitto-dev libpq-dev postgresql pkg-config "$@")
  local missing=()
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  is_root || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The reference tools of the tests (scripts/python-requirements.txt) in .local/venv, made once
# and again when the requirements change; exports MORPHEUS_PYTHON.
ensure_python_tools() {
  local venv requirements stamp
  venv="$(state_dir)/venv"
  requirements="$REPO_ROOT/scripts/python-requirements.txt"
  stamp="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]; then
    log "installing the Python reference tools into $venv"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
      rm -rf "$venv"
      local sudo=""
      is_root || sudo="sudo"
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      /usr/bin/python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" || die "pip could not install $requirements"
    echo "$stamp" > "$venv/.requirements"
  fi
  export MORPHEUS_PYTHON="$venv/bin/python"
}

ensure_swift() {
  command -v swift >/dev/null || [ -x /opt/swift/usr/bin/swift ] || die "swift is not installed"
  command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
}

pg_bin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$bin" ] || die "PostgreSQL server binaries not found"
  printf '%s' "$bin"
}

# Runs a PostgreSQL server command as the data directory's owner (PostgreSQL refuses root).
as_pg_owner() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Whether a process lives. A zombie does not count: daemons we start are re-parented to a PID 1
# that may never reap them.
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }

# Wait until a command succeeds, with a deadline in seconds.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# Installs what is missing and starts the private broker and database unless they already run.
# Whatever this starts is stopped again when the calling script exits.
PRIVATE_SERVICES_STARTED=()
stop_started_services() {
  local status=$?
  for service in "${PRIVATE_SERVICES_STARTED[@]}"; do bash "$REPO_ROOT/scripts/$service.sh" stop || true; done
  exit "$status"
}
start_private_services() {
  ensure_packages
  ensure_swift
  trap stop_started_services EXIT
  local service
  for service in broker postgres; do
    if ! bash "$REPO_ROOT/scripts/$service.sh" status >/dev/null 2>&1; then
      bash "$REPO_ROOT/scripts/$service.sh" start
      PRIVATE_SERVICES_STARTED+=("$service")
    fi
  done
}
