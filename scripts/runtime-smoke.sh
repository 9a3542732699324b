#!/usr/bin/env bash
# Proves the container's runtime stage without a Docker engine: builds the same file system as
# docker/Dockerfile's runtime (Debian bookworm minbase + libmosquitto1, libpq5, ca-certificates)
# with debootstrap, copies the release binary (Swift runtime linked statically) and its resources
# in, and runs an end-to-end smoke test inside it with chroot against the private broker and
# database: a correction published with mosquitto_pub must be answered `accepted` and stored.
#   bash scripts/runtime-smoke.sh            (the root file system is kept in .local/runtime-root)
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
is_root || die "chroot needs root"
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

root="$(state_dir)/runtime-root"
if [ ! -e "$root/usr/lib/x86_64-linux-gnu/libmosquitto.so.1" ]; then
  log "debootstrap: bookworm minbase + libmosquitto1 libpq5 ca-certificates into $root"
  rm -rf "$root"
  debootstrap --variant=minbase --include=libmosquitto1,libpq5,ca-certificates bookworm "$root" http://deb.debian.org/debian >"$(state_dir)/debootstrap.log" 2>&1 \
    || { tail -20 "$(state_dir)/debootstrap.log" >&2; die "debootstrap failed"; }
fi

ensure_swift
log "release build with the Swift runtime linked statically"
swift build -c release --static-swift-stdlib --product morpheus-feedback >/dev/null
bin="$(swift build -c release --show-bin-path)"
rm -rf "$root/app" && mkdir -p "$root/app/config"
cp "$bin/morpheus-feedback" "$root/app/" && cp -r "$bin"/*.resources "$root/app/"
cp config/morpheus.json "$root/app/config/"
# No library of the build machine may be needed: every one must resolve inside the runtime.
if chroot "$root" /usr/bin/ldd /app/morpheus-feedback | grep -q "not found"; then
  chroot "$root" /usr/bin/ldd /app/morpheus-feedback >&2
  die "libraries missing in the runtime file system"
fi
log "runtime libraries: $(chroot "$root" /usr/bin/ldd /app/morpheus-feedback | awk '{print $1}' | tr '\n' ' ')"

start_private_services
export_pseudonym_secret
url="$(bash scripts/postgres.sh url)"
PGPASSWORD="$(cat "$(state_dir)/postgres/password")" psql -q -h 127.0.0.1 -p "$MORPHEUS_PG_PORT" -U morpheus -d postgres \
  -c "DROP DATABASE IF EXISTS morpheus_runtime WITH (FORCE)" -c "CREATE DATABASE morpheus_runtime" >/dev/null
db="${url%/morpheus}/morpheus_runtime"
prefix="runtime-smoke/v1"
mount --bind /proc "$root/proc"; mount --bind /dev "$root/dev"
# Every step may fail here (errexit would end the handler early): each is allowed to.
cleanup() {
  local status=$?
  if [ -n "${service:-}" ]; then kill "$service" 2>/dev/null || true; wait "$service" 2>/dev/null || true; fi
  if [ -n "${replies:-}" ]; then kill "$replies" 2>/dev/null || true; fi
  umount "$root/proc" 2>/dev/null || true
  umount "$root/dev" 2>/dev/null || true
  # stop_started_services exits with the status it finds in $?: the script's own.
  (exit "$status") || stop_started_services
  stop_started_services
}
trap cleanup EXIT

log "starting the service inside the runtime file system"
chroot --userspec=65534:65534 "$root" /usr/bin/env -i MORPHEUS_DATABASE_URL="$db" MORPHEUS_BROKER_PORT="$MORPHEUS_BROKER_PORT" \
  MORPHEUS_PRIVACY_PSEUDONYM_SECRET="$MORPHEUS_PRIVACY_PSEUDONYM_SECRET" MORPHEUS_INSTANCE_ID=runtime-smoke MORPHEUS_METRICS_PORT=19464 \
  /app/morpheus-feedback --config /app/config/morpheus.json --topic-prefix "$prefix" > "$(state_dir)/runtime-smoke.log" 2>&1 &
service=$!
wait_until 30 curl -fsS http://127.0.0.1:19464/health/ready >/dev/null || { cat "$(state_dir)/runtime-smoke.log" >&2; die "the service did not get ready"; }

id="$(cat /proc/sys/kernel/random/uuid)"
mosquitto_sub -h 127.0.0.1 -p "$MORPHEUS_BROKER_PORT" -V mqttv5 -t "$prefix/replies/smoke.user/#" -C 1 -W 30 > "$(state_dir)/runtime-reply.json" &
replies=$!
sleep 0.5
mosquitto_pub -h 127.0.0.1 -p "$MORPHEUS_BROKER_PORT" -V mqttv5 -q 1 -t "$prefix/corrections/text/smoke.user" \
  -D publish response-topic "$prefix/replies/smoke.user/r" -m "$(cat <<JSON
{"schema":"morpheus.correction/1","feedbackId":"$id","userId":"smoke.user","modality":"text","correctionType":"dialogue",
 "occurredAt":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","target":{"comicId":"c-1"},
 "generation":{"id":"g-1","model":"storyteller","modelVersion":"3.1","prompt":"A line for the lighthouse keeper."},
 "original":{"text":"Hello."},"corrected":{"text":"MARA: The lamp stays lit until the last boat is in."}}
JSON
)"
wait "$replies" || die "no receipt within 30 s"
grep -q "\"feedbackId\":\"$id\"" "$(state_dir)/runtime-reply.json" && grep -q '"status":"accepted"' "$(state_dir)/runtime-reply.json" \
  || die "unexpected receipt: $(cat "$(state_dir)/runtime-reply.json")"
stored="$(psql "$db" -tAc "SELECT count(*) FROM feedback WHERE feedback_id = '$id'")"
[ "$stored" = 1 ] || die "the correction is not stored"
log "runtime smoke test passed: receipt $(cat "$(state_dir)/runtime-reply.json")"
