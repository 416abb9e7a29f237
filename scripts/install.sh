#!/usr/bin/env bash
# Production install on Debian 12 or later: a system user, the appliance's own virtual
# environment (built with Debian's /usr/bin/python3, whatever python3 comes first on root's
# PATH), the data directory, and the hardened systemd unit. Running it again upgrades in place:
# same venv, configuration and data kept, database migrated when the daemon next starts, the
# unit restarted if it was running.
set -euo pipefail
umask 022                       # the venv is root's, readable by the service user
ME=install.sh
SRC=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/installer-lib.sh
. "$SRC/scripts/installer-lib.sh"

usage() {
    cat <<EOF
Usage: sudo scripts/install.sh [OPTIONS]

  --prefix DIR        where the virtual environment goes (default /opt/strongroom)
  --data-dir DIR      configuration, keys, database and files (default /var/lib/strongroom)
  --user NAME         the service user, made if missing (default strongroom)
  --no-start          install the unit but do not start or restart it
  --host ADDR, --public-name NAME, --webdav-port N, --sftp-port N
                      passed on to 'strongroom init' (on an upgrade: written into the config)
  --bin-dir DIR       where the 'strongroom' command link goes (default /usr/local/bin)
  --unit-dir DIR      where the unit file goes (default /etc/systemd/system)

Example: sudo scripts/install.sh --host 0.0.0.0 --public-name files.example.org
EOF
}

PREFIX=/opt/strongroom; DATA=""; SVC=""; START=yes; BIN_DIR=""; UNIT_DIR=""
INIT_ARGS=()
while [ $# -gt 0 ]; do
    opt=$1; val=""
    case "$opt" in --*=*) val=${opt#*=}; opt=${opt%%=*}; set -- "$opt" "$val" "${@:2}" ;; esac
    case "$opt" in
        --prefix|--data-dir|--user|--bin-dir|--unit-dir|--host|--public-name|--webdav-port|--sftp-port)
            [ $# -ge 2 ] || die "$opt needs a value"
            case "$opt" in
                --prefix) PREFIX=$2 ;; --data-dir) DATA=$2 ;; --user) SVC=$2 ;;
                --bin-dir) BIN_DIR=$2 ;; --unit-dir) UNIT_DIR=$2 ;;
                *) INIT_ARGS+=("$opt" "$2") ;;
            esac
            shift 2 ;;
        --no-start) START=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$opt' (scripts/install.sh --help lists them)" ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "run it as root: sudo scripts/install.sh $*"
check_path --prefix "$PREFIX"
ENV_FILE=$PREFIX/install.env
VENV=$PREFIX/venv
# An existing install decides the layout: an upgrade must not silently move the data.
for pair in "DATA:DATA_DIR:--data-dir" "SVC:SERVICE_USER:--user" \
            "BIN_DIR:BIN_DIR:--bin-dir" "UNIT_DIR:UNIT_DIR:--unit-dir"; do
    IFS=: read -r var key flag <<<"$pair"
    was=$(recorded "$ENV_FILE" "$key")
    now=${!var}
    if [ -n "$was" ] && [ -n "$now" ] && [ "$was" != "$now" ]; then
        die "$PREFIX is installed with $flag $was; pass that to upgrade it, or run scripts/uninstall.sh --prefix $PREFIX first"
    fi
    [ -n "$now" ] || printf -v "$var" '%s' "$was"
done
DATA=${DATA:-/var/lib/strongroom}; SVC=${SVC:-strongroom}
BIN_DIR=${BIN_DIR:-/usr/local/bin}; UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
check_path --data-dir "$DATA"; check_path --bin-dir "$BIN_DIR"; check_path --unit-dir "$UNIT_DIR"
[[ $SVC =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "--user '$SVC' is not a valid user name"
case "$DATA/" in "$PREFIX"/*) die "--data-dir must not be inside --prefix ($PREFIX is replaced on upgrades)" ;; esac
LINK=$BIN_DIR/strongroom; UNIT=$UNIT_DIR/strongroom.service
SYSTEMD=no; [ -d /run/systemd/system ] && SYSTEMD=yes
if [ -e "$UNIT" ] && ! grep -qxF "ExecStart=$VENV/bin/strongroom serve" "$UNIT"; then
    die "$UNIT belongs to another installation ($(grep -m1 '^ExecStart=' "$UNIT" || echo 'no ExecStart')); remove it or pass --unit-dir"
fi
if [ -L "$LINK" ] && [ "$(readlink "$LINK")" != "$VENV/bin/strongroom" ]; then
    die "$LINK points to $(readlink "$LINK"), another installation; remove it or pass --bin-dir"
elif [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
    die "$LINK exists and is not a link made by install.sh; remove it or pass --bin-dir"
fi
for dir in "$PREFIX" "$DATA"; do
    case "$dir/" in /home/*|/root/*|/tmp/*|/var/tmp/*|/run/*)
        msg="$dir is hidden from the service by the unit's ProtectHome/PrivateTmp; choose a directory such as /srv/strongroom"
        if [ "$SYSTEMD" = yes ] && [ "$START" = yes ]; then die "$msg"; fi
        say "warning: $msg" ;;
    esac
done

# 1. Debian's own interpreter: a venv made with root's pyenv python links into /root.
PY=/usr/bin/python3
need=()
[ -x "$PY" ] || need+=(python3)
{ [ -x "$PY" ] && clean_env "$PY" -c 'import ensurepip, venv' 2>/dev/null; } || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]} with apt-get"
    logged "apt-get install ${need[*]}" env DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -qq && apt-get install -y -qq "$@"' apt "${need[@]}"
fi
PYVER=$(clean_env "$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])') \
    || die "$PY does not run"
clean_env "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PY is Python $PYVER; Strongroom needs 3.11 or later (Debian 12 or later)"

# 2. The service user and the data directory.
if ! id -u "$SVC" >/dev/null 2>&1; then
    say "creating the system user $SVC"
    # the comment marks it as ours: uninstall.sh --purge removes only a user made here
    logged "useradd $SVC" useradd --system --user-group --home-dir "$DATA" --no-create-home \
        --shell /usr/sbin/nologin --comment "$USER_MARK" "$SVC"
fi
[ "$(id -u "$SVC")" -ne 0 ] || die "--user $SVC is root; the daemon runs as an unprivileged user"
GROUP=$(id -gn "$SVC")
if [ -e "$DATA" ] || [ -L "$DATA" ]; then
    [ -d "$DATA" ] && [ ! -L "$DATA" ] || die "$DATA exists and is not a directory"
    owner=$(stat -c %U "$DATA")
    if [ "$owner" != "$SVC" ]; then
        [ -z "$(ls -A "$DATA")" ] || die "$DATA belongs to $owner, not $SVC: pass --user $owner, or choose another --data-dir"
        chown "$SVC:$GROUP" "$DATA"; chmod 0700 "$DATA"
    fi
else
    install -d -m 0755 "$(dirname "$DATA")"
    install -d -o "$SVC" -g "$GROUP" -m 0700 "$DATA"
fi
install -d -m 0755 "$PREFIX"
for dir in "$PREFIX" "$DATA"; do
    closed=$(first_closed "$dir")
    [ -z "$closed" ] || die "the service user $SVC cannot enter $closed (on the way to $dir): open it (chmod o+x $closed) or choose another directory"
done
# The version this replaces: recorded when an install completed (or, for an install made
# before install.env existed, asked of the old venv as root, who can still run it).
OLD=$(recorded "$ENV_FILE" VERSION)
if [ -z "$OLD" ] && [ -x "$VENV/bin/strongroom" ] && [ -e "$DATA/strongroom.toml" ] \
        && [ -z "$(recorded "$ENV_FILE" SOURCE)" ]; then
    OLD=$(clean_env "$VENV/bin/strongroom" --version 2>/dev/null | sed -n 's/^strongroom, version //p') || true
    OLD=${OLD:-"an unknown version (it did not run)"}
fi
write_env() {
    {
        echo "# Written by scripts/install.sh; read by install.sh (upgrades) and uninstall.sh."
        echo "DATA_DIR=$DATA"; echo "SERVICE_USER=$SVC"
        echo "BIN_DIR=$BIN_DIR"; echo "UNIT_DIR=$UNIT_DIR"; echo "SOURCE=$SRC"
        [ -z "${1:-}" ] || echo "VERSION=$1"
    } >"$ENV_FILE.new"
    mv "$ENV_FILE.new" "$ENV_FILE"
}
write_env "$OLD"                # from here on, uninstall.sh knows what to remove

# 3. The virtual environment: kept on upgrade unless it was made by another interpreter.
if [ -d "$VENV" ]; then
    # its python3 is a link to the interpreter it was made with (pyvenv.cfg: home)
    made_by=$(readlink "$VENV/bin/python3" 2>/dev/null || true)
    made_ver=$(sed -n 's/^version *= *\([0-9]*\.[0-9]*\).*/\1/p' "$VENV/pyvenv.cfg" 2>/dev/null || true)
    if [ "$made_by" != "$PY" ] || [ "$made_ver" != "${PYVER%.*}" ]; then
        say "rebuilding $VENV: it was made with ${made_by:-an unknown interpreter}${made_ver:+ (Python $made_ver)}, not $PY (Python $PYVER)"
        rm -rf "$VENV"
    fi
fi
if [ ! -d "$VENV" ]; then
    say "making the virtual environment $VENV with $PY (Python $PYVER)"
    logged "python3 -m venv $VENV" clean_env "$PY" -m venv "$VENV"
fi
STAGE=$(mktemp -d); trap 'rm -rf "$STAGE"' EXIT
# Built from a copy, so that a root-owned build/ is never left in the admin's checkout.
tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./data --exclude=./build \
    --exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -C "$STAGE" -xf - \
    || die "cannot copy the source from $SRC"
say "installing Strongroom and its Python packages into $VENV (pip)"
logged "pip install" clean_env "$VENV/bin/python" -m pip install --disable-pip-version-check \
    --no-warn-script-location "$STAGE[postgres]"
build_id "$SRC" >"$VENV/strongroom-build"
NEW=$(as_service "$SVC" "$DATA" "$VENV/bin/strongroom" --version 2>&1) \
    || die "the service user $SVC cannot run $VENV/bin/strongroom: $(last_line "$NEW")"
NEW=${NEW#strongroom, version }
say "checked: $SVC runs strongroom $NEW"
install -d -m 0755 "$BIN_DIR"
ln -sfn "$VENV/bin/strongroom" "$LINK"

# 4. The data directory: made on the first install; later, init only applies given options.
if [ ! -e "$DATA/strongroom.toml" ] || [ ${#INIT_ARGS[@]} -gt 0 ]; then
    out=$(as_service "$SVC" "$DATA" "$VENV/bin/strongroom" init --data-dir "$DATA" "${INIT_ARGS[@]}" 2>&1) \
        || die "strongroom init failed: $(last_line "$out")"
    sed 's/^/  /' <<<"$out"
fi

# 5. The unit, made for this layout and checked.
sed -e 's#/opt/strongroom#@PREFIX@#g' -e 's#/var/lib/strongroom#@DATA@#g' \
    -e "s#@PREFIX@#$PREFIX#g" -e "s#@DATA@#$DATA#g" \
    -e "s#^User=strongroom\$#User=$SVC#" -e "s#^Group=strongroom\$#Group=$GROUP#" \
    -e "1s#.*#\# Strongroom appliance: written by scripts/install.sh from systemd/strongroom.service.#" \
    "$SRC/systemd/strongroom.service" >"$STAGE/strongroom.service"
if command -v systemd-analyze >/dev/null; then
    logged "systemd-analyze verify (the unit made for $PREFIX)" \
        systemd-analyze verify "$STAGE/strongroom.service"
fi
install -d -m 0755 "$UNIT_DIR"
install -m 0644 "$STAGE/strongroom.service" "$UNIT"

# 6. Start, restart, or say how.
write_env "$NEW"                # a complete install: the next run is an upgrade from $NEW
if [ -n "$OLD" ]; then
    say "upgraded strongroom $OLD to $NEW in $PREFIX; configuration and data in $DATA kept (the database is migrated when the daemon starts)"
else
    say "installed strongroom $NEW in $PREFIX; data in $DATA, service user $SVC, command $LINK"
fi
if [ "$SYSTEMD" = yes ]; then
    systemctl daemon-reload
    active=no; systemctl -q is-active strongroom && active=yes
    if [ "$START" = no ]; then
        say "not started (--no-start)${active/yes/; the running daemon keeps the old version}: systemctl enable --now strongroom"
    elif [ "$active" = yes ]; then
        say "restarting the service"; systemctl restart strongroom; wait_serving "$SVC" "$DATA" "$VENV"
    elif [ -z "$OLD" ]; then
        say "starting the service"; systemctl enable --now -q strongroom; wait_serving "$SVC" "$DATA" "$VENV"
    else
        say "the service was stopped and stays stopped: systemctl start strongroom"
    fi
else
    pid=$(serving_pid "$DATA")
    if [ -n "$pid" ]; then
        say "PID $pid still serves $DATA with the old version: restart it to run $NEW"
    else
        say "systemd is not running here; start the daemon with: runuser -u $SVC -- $VENV/bin/strongroom serve --data-dir $DATA"
    fi
fi
