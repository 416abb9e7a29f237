"""The fault-injection level: the real daemon on SQLite and on PostgreSQL, driven by
concurrent WebDAV and SFTP clients while files are overwritten, renamed and deleted
under them, the daemon is killed, the CLI changes things and the disk fills. After
each scenario the invariants of tests/support/faults.py are checked. Every scenario
is bounded (seconds), and every test here carries the `faults` marker and the `e2e`
marker (it starts the daemon, so `-m "not e2e"` leaves it out).

`daemon` (module-scoped) is parametrized over both databases: each module runs its
scenarios once on SQLite and once on a throwaway PostgreSQL database.
"""
import pytest

from tests.support.daemon import running_on


def pytest_itemcollected(item):
    item.add_marker(pytest.mark.faults)
    item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def daemon(request, tmp_path_factory):
    yield from running_on(request.param, tmp_path_factory, "faults")
