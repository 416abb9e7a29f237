"""Throwaway PostgreSQL databases for the service level.

STRONGROOM_TEST_PG_URL names the server (any database on it; the role needs CREATEDB:
tests/service/PG_SETUP.txt). Without it PostgreSQL cases are skipped, except under
CI=true, where they fail: CI must never pass by silently skipping PostgreSQL.
"""
import os
import secrets
import time
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import make_url

PG_ENV = "STRONGROOM_TEST_PG_URL"


def pg_server_url():
    """The configured PostgreSQL URL, or skip (fail under CI=true) when there is none."""
    url = os.environ.get(PG_ENV)
    if url:
        return make_url(url)
    reason = (f"PostgreSQL tests need {PG_ENV}, e.g. "
              "postgresql+psycopg2://strongroom:strongroom@127.0.0.1:5432/postgres")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so they may not be skipped")
    pytest.skip(reason)


@contextmanager
def fresh_database():
    """The URL (password included) of a new, empty database, dropped afterwards."""
    server = pg_server_url()
    name = f"strongroom_t_{secrets.token_hex(6)}"
    _pg_execute(server, f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        _pg_drop(server, name)


def _pg_admin(url):
    import psycopg2
    conn = psycopg2.connect(host=url.host or "127.0.0.1", port=url.port or 5432,
                            user=url.username, password=url.password, dbname="postgres")
    conn.autocommit = True
    return conn


def _pg_execute(url, sql: str) -> None:
    conn = _pg_admin(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _pg_drop(url, name: str) -> None:
    """Drop a test database, ending the test's own leftover connections to it first.

    Not WITH (FORCE): for a role without pg_signal_backend that fails whenever an autovacuum
    worker happens to be in the database, while a plain DROP stops autovacuum by itself.
    """
    import psycopg2
    conn = _pg_admin(url)
    try:
        with conn.cursor() as cur:
            for attempt in range(1, 21):
                try:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
                    return
                except psycopg2.errors.ObjectInUse:
                    if attempt == 20:
                        raise
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = %s AND usename = current_user", (name,))
                time.sleep(0.05 * attempt)
    finally:
        conn.close()
