"""The service level: the service layer and the store in this process, no daemon, on
SQLite and on PostgreSQL. Every test here carries the `service` marker.

`app` is a real `App` on a fresh data directory, parametrized over both databases
(`database_url`). Each case starts from a newly migrated database: a copy of one made
once for SQLite, and for PostgreSQL one of this worker's databases, emptied back to what
the migrations leave between cases (tests/support/postgres.py `MigratedPool`;
tests/service/PG_SETUP.txt; skipped without STRONGROOM_TEST_PG_URL, failing under CI=true).
"""
import shutil
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from strongroom.appliance.app import App
from strongroom.appliance.initialize import initialize
from strongroom.auth import passwords
from tests.support import postgres

_MADE_ONCE = ("master.key", "ssh", "tls")   # slow to generate; shared by every test
# argon2id at the product's parameters (RFC 9106 low-memory: 64 MiB, 3 passes) costs about
# 0.35 s a hash and 0.3 s a verification on 2 cores, and this level makes hundreds of users
# and logins: half of its time went there. Tests marked `real_argon2` (the cost of logins,
# their timing) keep those parameters; the others hash with the same algorithm and code at
# the least cost.
_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_CHEAP_DUMMY = _CHEAP.hash("an account that does not exist")


def pytest_itemcollected(item):
    item.add_marker(pytest.mark.service)


@pytest.fixture(autouse=True)
def _cheap_argon2(request, monkeypatch):
    if request.node.get_closest_marker("real_argon2") is None:
        monkeypatch.setattr(passwords, "_hasher", _CHEAP)
        monkeypatch.setattr(passwords, "_DUMMY_HASH", _CHEAP_DUMMY)


@pytest.fixture(scope="session")
def key_template(tmp_path_factory) -> Path:
    """One initialized data dir whose master key, host keys, certificate and newly
    migrated SQLite database are copied into every case's."""
    path = tmp_path_factory.mktemp("template")
    initialize(path, {})
    return path


@pytest.fixture(scope="session")
def pg_pool():
    pool = postgres.MigratedPool()
    yield pool
    pool.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, pg_pool):
    """None for SQLite (the data dir default), or the URL of a newly migrated PostgreSQL
    database."""
    if request.param == "sqlite":
        yield None
        return
    with pg_pool.lease() as url:
        yield url


@pytest.fixture
def data_dir(tmp_path, key_template, database_url) -> Path:
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    for name in _MADE_ONCE + (() if database_url else ("strongroom.db",)):
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
