#!/usr/bin/env bash
# Install what the tests need, type-check (mypy --strict, [tool.mypy] in pyproject.toml:
# an error fails here), start a local PostgreSQL for the service level, and run the whole
# suite: on STRONGROOM_TEST_WORKERS processes (default 4, pytest-xdist: end-to-end tests
# wait on clients and daemons more than they compute, so more processes than cores shorten the run
# on 2 cores; tests/conftest.py says which tests stay together: an end-to-end module's, per
# database, sharing its daemon; long modules marked `slow` start first). Arguments go to
# pytest: `scripts/test.sh -m "not e2e"`
# runs the fast levels (tests/unit, tests/service). Exit status is mypy's if it found
# errors, else pytest's (5, no tests, is a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
echo "test.sh: mypy" >&2
.venv/bin/python -m mypy
SUDO=""; AS_PG="runuser -u postgres --"
[ "$(id -u)" -eq 0 ] || { SUDO="sudo"; AS_PG="sudo -u postgres"; }
if [ -z "${STRONGROOM_TEST_PG_URL:-}" ] && ls /usr/lib/postgresql >/dev/null 2>&1; then
    PGVER=$(ls /usr/lib/postgresql | sort -n | tail -1)
    $SUDO pg_lsclusters -h | grep -q "^$PGVER main" || $SUDO pg_createcluster "$PGVER" main >/dev/null
    $SUDO pg_ctlcluster "$PGVER" main start 2>/dev/null || true
    for _ in $(seq 1 30); do
        $AS_PG psql -qtAc "select 1" >/dev/null 2>&1 && break; sleep 1
    done
    $AS_PG psql -qtAc "select 1 from pg_roles where rolname='strongroom'" | grep -q 1 ||
        $AS_PG psql -qc "create role strongroom login createdb password 'strongroom'"
    PGPORT=$($SUDO pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main" {print $3}')
    export STRONGROOM_TEST_PG_URL="postgresql+psycopg2://strongroom:strongroom@127.0.0.1:$PGPORT/postgres"
fi
set +e
export PATH="$PWD/.venv/bin:$PATH"
# Python may keep the compiled modules (many images set this): the suite starts the CLI
# and the daemon as processes thousands of times, and compiling 120 modules costs each 0.2 s.
unset PYTHONDONTWRITEBYTECODE
.venv/bin/python -m pytest -q -n "${STRONGROOM_TEST_WORKERS:-4}" "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "no tests ran: failing" >&2; exit 1; fi
exit $rc
