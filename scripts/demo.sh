#!/usr/bin/env bash
# Set up and start Strongroom with a demo client on this machine (SQLite, local disk).
# Data goes to ./data (or $STRONGROOM_DATA_DIR). Stop with Ctrl-C; run again to restart.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export STRONGROOM_DATA_DIR="${STRONGROOM_DATA_DIR:-$PWD/data}"
SR="$PWD/.venv/bin/strongroom"
$SR init --host "${STRONGROOM_HOST:-127.0.0.1}" >/dev/null
if ! $SR client list --json | grep -q '"name": "demo"'; then
    $SR client add demo --quota 10GiB >/dev/null
    $SR user add demo --client demo --no-totp --json > "$STRONGROOM_DATA_DIR/demo-user.json"
    chmod 600 "$STRONGROOM_DATA_DIR/demo-user.json"
fi
PW=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"])' \
     "$STRONGROOM_DATA_DIR/demo-user.json")
HOST=$(grep -m1 '^host' "$STRONGROOM_DATA_DIR/strongroom.toml" | cut -d'"' -f2)
WPORT=$(grep -m1 '^webdav_port' "$STRONGROOM_DATA_DIR/strongroom.toml" | awk '{print $3}')
SPORT=$(grep -m1 '^sftp_port' "$STRONGROOM_DATA_DIR/strongroom.toml" | awk '{print $3}')
cat <<INFO

Strongroom demo
  WebDAV:  https://$HOST:$WPORT/   (self-signed certificate: $STRONGROOM_DATA_DIR/tls/cert.pem)
  SFTP:    sftp -P $SPORT demo@$HOST
  login:   demo
  password: $PW          (also in $STRONGROOM_DATA_DIR/demo-user.json)
  admin:   STRONGROOM_DATA_DIR=$STRONGROOM_DATA_DIR $SR --help

INFO
exec $SR serve
