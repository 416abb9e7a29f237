#!/usr/bin/env bash
# Set up and start Strongroom with a demo client on this machine (SQLite, local disk).
# Data goes to ./data (or $STRONGROOM_DATA_DIR). Stop with Ctrl-C; run again to restart.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '==> %s\n' "$*" >&2; }
step "Installing what Strongroom needs (the first run takes a minute or two)"
scripts/deps.sh
export STRONGROOM_DATA_DIR="${STRONGROOM_DATA_DIR:-$PWD/data}"
SR="$PWD/.venv/bin/strongroom"
PY="$PWD/.venv/bin/python"
USERFILE="$STRONGROOM_DATA_DIR/demo-user.json"
step "Preparing $STRONGROOM_DATA_DIR (keys, certificate, database)"
$SR init --host "${STRONGROOM_HOST:-127.0.0.1}" >/dev/null
if ! $SR client list --json | grep -q '"name": "demo"'; then
    step "Making the client 'demo' and its user 'demo', with a password and TOTP"
    $SR client add demo --quota 10GiB >/dev/null
    (umask 077; $SR user add demo --client demo --json > "$USERFILE")
elif ! grep -q '"totp_secret"' "$USERFILE"; then
    step "Enrolling TOTP for the demo user of an earlier run"
    $SR user totp-reset demo --json | $PY -c 'import json, sys
d = json.load(open(sys.argv[1])); d.update(json.load(sys.stdin))
json.dump(d, open(sys.argv[1], "w"), indent=2)' "$USERFILE"
fi
field() { $PY -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$USERFILE" "$1"; }
PW=$(field password)
SECRET=$(field totp_secret)
HOST=$(grep -m1 '^host' "$STRONGROOM_DATA_DIR/strongroom.toml" | cut -d'"' -f2)
WPORT=$(grep -m1 '^webdav_port' "$STRONGROOM_DATA_DIR/strongroom.toml" | awk '{print $3}')
SPORT=$(grep -m1 '^sftp_port' "$STRONGROOM_DATA_DIR/strongroom.toml" | awk '{print $3}')
echo
echo "Scan this with an authenticator app (or type the secret $SECRET into it):"
$PY -c 'import sys; from strongroom.auth.totp import qr_text; print(qr_text(sys.argv[1]))' "$(field otpauth_uri)"
cat <<INFO
Strongroom demo
  WebDAV:   https://$HOST:$WPORT/   (self-signed certificate: $STRONGROOM_DATA_DIR/tls/cert.pem)
  SFTP:     sftp -P $SPORT demo@$HOST
  login:    demo
  password: $PW   (also in $USERFILE)
  code:     the 6-digit code the app shows now; each code works once

  Two ways to log in:
  - SFTP programs that ask twice (OpenSSH sftp, WinSCP, FileZilla "Interactive"):
    the password at "Password:", then the code at "Verification code:".
  - Programs that ask once (lftp, sshfs) and WebDAV drives when you map them:
    the password followed directly by the code, e.g. ${PW}123456 for code 123456.

  admin:    STRONGROOM_DATA_DIR=$STRONGROOM_DATA_DIR $SR status   (or --help)

INFO
exec $SR serve
