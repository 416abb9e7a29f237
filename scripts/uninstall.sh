#!/usr/bin/env bash
# Removes what scripts/install.sh installed: the unit, the virtual environment and the command
# link. The data directory (configuration, keys, database, every client's files) is kept unless
# --purge is given; --purge also removes the service user if install.sh made it.
set -euo pipefail
ME=uninstall.sh
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/installer-lib.sh
. "$SRC/scripts/installer-lib.sh"

usage() {
    cat <<EOF
Usage: sudo scripts/uninstall.sh [--prefix DIR] [--purge [--yes]]

  --prefix DIR   the installation to remove (default /opt/strongroom); its install.env
                 says where its data directory, user, unit and command link are
  --purge        also delete the data directory, with every client's files and the keys
                 (asks to confirm; --yes confirms without asking)

Example: sudo scripts/uninstall.sh            # keeps /var/lib/strongroom
EOF
}

PREFIX=/opt/strongroom; PURGE=no; YES=no
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; PREFIX=$2; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --purge) PURGE=yes; shift ;;
        --yes|-y) YES=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (scripts/uninstall.sh --help lists them)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run it as root: sudo scripts/uninstall.sh $*"
check_path --prefix "$PREFIX"
ENV_FILE=$PREFIX/install.env
[ -f "$ENV_FILE" ] || die "nothing installed by install.sh in $PREFIX (no $ENV_FILE); pass --prefix"
DATA=$(recorded "$ENV_FILE" DATA_DIR); SVC=$(recorded "$ENV_FILE" SERVICE_USER)
BIN_DIR=$(recorded "$ENV_FILE" BIN_DIR); UNIT_DIR=$(recorded "$ENV_FILE" UNIT_DIR)
for value in "$DATA" "$BIN_DIR" "$UNIT_DIR"; do check_path "$ENV_FILE" "$value"; done
VENV=$PREFIX/venv; LINK=$BIN_DIR/strongroom; UNIT=$UNIT_DIR/strongroom.service
SYSTEMD=no; [ -d /run/systemd/system ] && SYSTEMD=yes

# Everything that can refuse does so before anything is removed.
if [ "$PURGE" = yes ] && [ "$YES" = no ]; then
    [ -t 0 ] || die "--purge deletes $DATA with every client's files and keys: pass --yes to confirm"
    read -r -p "Delete $DATA with every client's files, the keys and the audit trail? Type 'delete': " answer
    [ "$answer" = delete ] || die "not confirmed; nothing was removed"
fi
unit_ours=no
[ -f "$UNIT" ] && grep -qxF "ExecStart=$VENV/bin/strongroom serve" "$UNIT" && unit_ours=yes
if [ "$SYSTEMD" = yes ] && [ "$unit_ours" = yes ]; then
    systemctl disable --now -q strongroom 2>/dev/null || true
fi
pid=$(serving_pid "$DATA")
[ -z "$pid" ] || die "PID $pid still serves $DATA, not under systemd: stop it first (nothing was removed)"

if [ "$unit_ours" = yes ]; then
    rm -f "$UNIT"; say "removed $UNIT"
    [ "$SYSTEMD" = no ] || systemctl daemon-reload
fi
if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$VENV/bin/strongroom" ]; then
    rm -f "$LINK"; say "removed $LINK"
fi
rm -rf "$VENV"; say "removed $VENV"
rm -f "$ENV_FILE"
rmdir "$PREFIX" 2>/dev/null || say "kept $PREFIX: it holds files install.sh did not put there"
if [ "$PURGE" = no ]; then
    say "kept $DATA (configuration, keys, database, files): install.sh --data-dir $DATA uses it again, rm -rf $DATA deletes it"
    exit 0
fi
rm -rf "$DATA"; say "deleted $DATA"
if [ "$(getent passwd "$SVC" | cut -d: -f5)" = "$USER_MARK" ]; then
    logged "userdel $SVC" userdel "$SVC"; say "removed the user $SVC"
elif id -u "$SVC" >/dev/null 2>&1; then
    say "kept the user $SVC: install.sh did not make it"
fi
