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
    PKGS="$PKGS openssh-client sshpass rclone curl postgresql litmus cadaver lftp davfs2 fuse3 putty-tools sshfs expect chromium chromium-driver"
    EXTRA="[test]"
fi
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    echo "deps.sh: installing system packages:$missing" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
[ -x .venv/bin/python ] || { echo "deps.sh: making the virtual environment .venv" >&2; python3 -m venv .venv; }
echo "deps.sh: installing Strongroom and its Python packages into .venv" >&2
log=$(mktemp)
# One line per package fetched, so that a first install is not a silent minute.
if ! .venv/bin/pip install -e ".$EXTRA" 2>&1 | tee "$log" | awk '
        /^Collecting / { print "  " $2; fflush() }
        /^Processing .*\.whl/ { n = split($2, part, "/"); print "  " part[n]; fflush() }
        /^Installing collected/ { print "  installing them"; fflush() }
        /^Successfully installed/ { print "  installed " NF - 2 " packages"; fflush() }' >&2; then
    cat "$log" >&2; rm -f "$log"
    echo "deps.sh: pip install failed" >&2; exit 1
fi
rm -f "$log"
