# Shared by scripts/install.sh and scripts/uninstall.sh (sourced; set ME first).
# Every failure is one line on stderr, prefixed by the script's name, and a non-zero exit.

USER_MARK="Strongroom appliance (made by install.sh)"

die() { echo "$ME: $*" >&2; exit 1; }
say() { echo "$ME: $*"; }

# The last non-empty line of a command's output: the one that says what went wrong.
last_line() { grep -v '^[[:space:]]*$' <<<"$1" | tail -1; }

# Runs a command with its output kept aside; on failure, one line with its last line.
logged() {
    local what=$1 log; shift
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        local last; last=$(last_line "$(cat "$log")")
        die "$what failed: ${last:-no output} (whole output: $log)"
    fi
    rm -f "$log"
}

# Paths go into the unit file and into sed: absolute, plain characters, no '..'.
check_path() {
    [[ $2 =~ ^/[A-Za-z0-9._/+-]*$ ]] && [[ ! $2 =~ (^|/)\.\.?(/|$) ]] \
        || die "$1 '$2' must be an absolute path of letters, digits and ._+-/ only"
}

# A value recorded in install.env (KEY=VALUE lines; read, never sourced).
recorded() { [ -f "$1" ] && sed -n "s/^$2=//p" "$1" | tail -1 || true; }

# Root's Python settings (pyenv, a virtualenv, PYTHONPATH) must not leak into the install.
clean_env() {
    env -u PYTHONHOME -u PYTHONPATH -u PYTHONSTARTUP -u PYTHONUSERBASE -u VIRTUAL_ENV \
        -u PIP_USER -u PIP_TARGET -u PIP_PREFIX -u PIP_REQUIRE_VIRTUALENV "$@"
}

# Runs a command as the service user, from /, with a minimal environment.
as_service() {
    local user=$1 home=$2; shift 2
    (cd / && runuser -u "$user" -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        HOME="$home" "$@")
}

# The first existing directory on the way to $1 that the service user ($SVC) cannot enter.
first_closed() {
    local path="" part parts
    IFS=/ read -ra parts <<<"${1#/}"
    for part in "" "${parts[@]}"; do
        path="${path%/}/$part"
        [ -d "$path" ] || return 0
        as_service "$SVC" / test -x "$path" || { echo "$path"; return 0; }
    done
}

# 'git 0e5f1a2' (with ', local changes' when the checkout differs), or nothing without git.
build_id() {
    local src=$1 rev
    command -v git >/dev/null && [ -e "$src/.git" ] || return 0
    rev=$(git -c safe.directory="$src" -C "$src" rev-parse --short HEAD 2>/dev/null) || return 0
    if [ -n "$(git -c safe.directory="$src" -C "$src" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        echo "git $rev, local changes"
    else
        echo "git $rev"
    fi
}

# The PID of the daemon holding DATA/strongroom.pid, or nothing.
serving_pid() {
    local lock=$1/strongroom.pid
    [ -f "$lock" ] || return 0
    flock -n -s "$lock" true 2>/dev/null && return 0
    sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' "$lock" | head -1
}

# Waits until the daemon answers on both ports (strongroom status), at most 30 s.
wait_serving() {
    local user=$1 data=$2 venv=$3 out=""
    for _ in $(seq 1 60); do
        out=$(as_service "$user" "$data" "$venv/bin/strongroom" status --data-dir "$data" --json 2>&1) || true
        if "$venv/bin/python" -c 'import json, sys
d = json.loads(sys.stdin.read())
sys.exit(not (d["daemon"]["running"] and d["webdav"]["accepting"] and d["sftp"]["accepting"]))' \
                <<<"$out" 2>/dev/null; then
            say "the daemon answers on both ports"
            return 0
        fi
        sleep 0.5
    done
    die "the daemon did not answer on both ports within 30 s: $(last_line "$out" | cut -c1-200); see journalctl -u strongroom"
}
