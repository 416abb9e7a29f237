"""Throwaway PostgreSQL databases for the service level.

STRONGROOM_TEST_PG_URL names the server (any database on it; the role needs CREATEDB:
tests/service/PG_SETUP.txt). Without it PostgreSQL cases are skipped, except under
CI=true, where they fail: CI must never pass by silently skipping PostgreSQL.

`fresh_database()` makes an empty database. `MigratedPool` hands out databases already at
the newest schema and emptied back to what the migrations leave: making and migrating a
database costs about 0.4 s, emptying one about 10 ms, and this level has hundreds of cases.
"""
import os
import secrets
import time
from contextlib import contextmanager
from typing import Iterator

import pytest
from sqlalchemy import MetaData, Table, create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

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


class MigratedPool:
    """Databases at the newest schema, each handed to one test at a time and emptied when
    it comes back, so that a test sees exactly what a new migrated database holds.

    A database that comes back changed in shape (a test migrated it elsewhere, added a
    table or column) or that cannot be emptied within two seconds (a test left a
    transaction open) is dropped instead. `close()` drops them all."""

    def __init__(self) -> None:
        self._server: URL | None = None
        self._free: list[str] = []
        self._names: set[str] = set()
        self._shape: tuple | None = None
        self._seed: dict[str, list[dict]] = {}
        self._sequences: list[tuple[str, int, bool]] = []
        self._tables: list[Table] = []

    @contextmanager
    def lease(self) -> Iterator[str]:
        """The URL of a migrated database holding only what the migrations put in it."""
        self._server = self._server or pg_server_url()
        name = self._free.pop() if self._free else self._make()
        url = self._server.set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            if self._empty(url):
                self._free.append(name)
            else:
                self._names.discard(name)
                _pg_drop(self._server, name)

    def close(self) -> None:
        if self._server is not None:
            for name in sorted(self._names):
                _pg_drop(self._server, name)
        self._names.clear()
        self._free.clear()

    def _make(self) -> str:
        from strongroom.appliance.db.engine import Database
        from strongroom.appliance.db.migrate import upgrade
        assert self._server is not None
        name = f"strongroom_t_{secrets.token_hex(6)}"
        _pg_execute(self._server, f'CREATE DATABASE "{name}"')
        self._names.add(name)
        db = Database(self._server.set(database=name).render_as_string(hide_password=False))
        try:
            upgrade(db)
            if self._shape is None:
                self._learn(db.engine)
        finally:
            db.dispose()
        return name

    def _learn(self, engine: Engine) -> None:
        """What a newly migrated database is: its shape, rows and sequence positions."""
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as c:
            self._shape = _shape(c)
            self._tables = list(meta.sorted_tables)
            self._seed = {t.name: [dict(r._mapping) for r in c.execute(t.select())]
                          for t in self._tables}
            self._sequences = [tuple(r) for r in c.execute(text(
                "SELECT sequencename, COALESCE(last_value, start_value), last_value IS NOT NULL"
                " FROM pg_sequences WHERE schemaname = 'public'"))]

    def _empty(self, url: str) -> bool:
        """Put the database back as `_learn` found it; False when that is not possible."""
        engine = create_engine(url)
        try:
            with engine.begin() as c:
                c.execute(text("SET LOCAL lock_timeout = '2s'"))
                if _shape(c) != self._shape:
                    return False
                for table in reversed(self._tables):
                    c.execute(table.delete())
                for table in self._tables:
                    if self._seed[table.name]:
                        c.execute(table.insert(), self._seed[table.name])
                for seq, value, called in self._sequences:
                    c.execute(text("SELECT setval(:s, :v, :c)"),
                              {"s": seq, "v": value, "c": called})
            return True
        except SQLAlchemyError:
            return False
        finally:
            engine.dispose()


def _shape(c) -> tuple:
    """The schema revision and every table's columns, to notice a changed database."""
    version = tuple(sorted(r[0] for r in c.execute(text("SELECT version_num FROM alembic_version"))))
    columns = tuple(c.execute(text(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY 1, 2")))
    return version, columns
