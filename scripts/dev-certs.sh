#!/usr/bin/env bash
# Makes a throw-away CA, a broker certificate for 127.0.0.1/localhost and a client certificate
# in DIR, for trying TLS locally and for the TLS tests. Never use these in production.
#   dev-certs.sh DIR
source "$(dirname "$0")/lib.sh"
dir="${1:?usage: dev-certs.sh DIR}"
mkdir -p "$dir"
cd "$dir"
subject() { printf '/CN=%s' "$1"; }
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "$(subject morpheus-dev-ca)" \
  -keyout ca.key -out ca.crt >/dev/null 2>&1
for name in server client; do
  openssl req -newkey rsa:2048 -nodes -subj "$(subject "morpheus-dev-$name")" -keyout "$name.key" -out "$name.csr" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$name.ext" -out "$name.crt" >/dev/null 2>&1
done
# The broker drops to the 'mosquitto' user when started as root and must read its key.
chmod 644 ./*.key ./*.crt
log "certificates in $dir"
