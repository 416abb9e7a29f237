#!/usr/bin/env bash
# Install the system packages Strongroom and its tests need (Debian 12), and make
# the Python virtual environment .venv with the project installed in it.
# Usage: scripts/deps.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="python3 python3-venv python3-pip openssl"
EXTRA=""
if [ "${1:-}" = "--test" ]; then
    PKGS="$PKGS openssh-client sshpass rclone curl postgresql litmus cadaver lftp davfs2 fuse3 putty-tools sshfs expect"
    EXTRA="[test]"
fi
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
log=$(mktemp)
if ! .venv/bin/pip install -e ".$EXTRA" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "deps.sh: pip install failed" >&2; exit 1
fi
rm -f "$log"
