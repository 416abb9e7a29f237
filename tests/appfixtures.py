"""In-process fixtures: a real `App` on SQLite and on PostgreSQL, plus small helpers.

`app` is parametrized over both databases. PostgreSQL needs STRONGROOM_TEST_PG_URL
(any database on the server; each test gets a fresh database, dropped afterwards).
Without it the PostgreSQL cases are skipped, except under CI=true, where they fail:
CI must never pass by silently skipping PostgreSQL.

Use from a test module with `from tests.appfixtures import *  # noqa`.
"""
import hashlib
import os
import secrets
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from strongroom.appliance.app import App
from strongroom.appliance.db import repo
from strongroom.appliance.initialize import initialize
from strongroom.appliance.service import ADMIN
from strongroom.providers import digest as digests

PG_ENV = "STRONGROOM_TEST_PG_URL"
PASSWORD = "Correct-horse-battery-staple-42"
_MADE_ONCE = ("master.key", "ssh", "tls")   # slow to generate; shared by every test

__all__ = ["PG_ENV", "PASSWORD", "ADMIN", "key_template", "database_url", "app", "data_dir",
           "client_session", "admin_session", "put", "get", "sha", "digest", "pg_server_url"]


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


@pytest.fixture(scope="session")
def key_template(tmp_path_factory) -> Path:
    """One initialized data dir whose master key, host keys and certificate are reused."""
    path = tmp_path_factory.mktemp("template")
    initialize(path, {})
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    """None for SQLite (the data dir default), or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    server = pg_server_url()
    name = f"strongroom_t_{secrets.token_hex(6)}"
    _pg_execute(server, f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        _pg_drop(server, name)


@pytest.fixture
def data_dir(tmp_path, key_template, database_url) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    for name in _MADE_ONCE:
        src = key_template / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, path / name)
    settings = {"database": {"url": database_url}} if database_url else {}
    initialize(path, settings)
    return path


@pytest.fixture
def app(data_dir):
    application = App(data_dir)
    yield application
    application.close()


def client_session(app, client: str, login: str | None = None, *, quota=None,
                   create_client: bool = True):
    """Create `client` (unless told not to) and a user in it; return that user's Session."""
    if create_client:
        app.admin().add_client(client, quota=quota)
    login = login or f"{client}-user"
    app.admin().add_user(login, client=client, staff=False, email=None, password=PASSWORD,
                         with_totp=False)
    principal = app.auth.password_login(login, PASSWORD, "test", "127.0.0.1")
    return app.session(principal, "test", "127.0.0.1")


def admin_session(app):
    """The administrator's view: '/<client>/...' for every client."""
    return app.session(ADMIN, "test", "127.0.0.1")


def put(session, path: str, data: bytes, block: int = 64 * 1024):
    """Upload `data` to `path` in blocks; return the committed Entry."""
    upload = session.open_write(path)
    try:
        for i in range(0, len(data), block):
            upload.append(data[i:i + block])
        return upload.commit()
    finally:
        upload.abort()


def get(session, path: str, version_id: int | None = None) -> bytes:
    handle = session.open_read(path, version_id)
    try:
        return handle.read(0, handle.entry.size)
    finally:
        handle.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(session, data: bytes, client: str | None = None) -> str:
    """The keyed digest a version of `data` written in one piece gets in `client`'s
    tree (default: the session's own client)."""
    app = session.app
    with app.db.read() as s:
        wrapped = repo.client_by_name(s, client or session.principal.client).wrapped_key
    return digests.of_bytes(app.keyring.digest_key(wrapped), data, app.provider.chunk_size)
