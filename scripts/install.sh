#!/usr/bin/env bash
# Production install on Debian 12: a system user, its own virtual environment in
# /opt/strongroom/venv, data in /var/lib/strongroom, and the hardened systemd unit.
# Usage: sudo scripts/install.sh [--host 0.0.0.0] [--public-name files.example.org]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
id strongroom >/dev/null 2>&1 || useradd --system --home /var/lib/strongroom --shell /usr/sbin/nologin strongroom
install -d -o strongroom -g strongroom -m 0700 /var/lib/strongroom
[ -x /opt/strongroom/venv/bin/python ] || python3 -m venv /opt/strongroom/venv
/opt/strongroom/venv/bin/pip install -q .
ln -sf /opt/strongroom/venv/bin/strongroom /usr/local/bin/strongroom
runuser -u strongroom -- /opt/strongroom/venv/bin/strongroom init --data-dir /var/lib/strongroom "$@"
install -m 0644 systemd/strongroom.service /etc/systemd/system/strongroom.service
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now strongroom
    systemctl --no-pager status strongroom | head -5
else
    echo "systemd is not running here; start with: runuser -u strongroom -- strongroom serve --data-dir /var/lib/strongroom"
fi
