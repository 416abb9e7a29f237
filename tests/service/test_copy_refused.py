"""A copy or a move between clients that fails changes nothing, on SQLite and
PostgreSQL: refused up front when it cannot fit, and when it fails halfway anyway
(here: a fault injected into the third file), what it made is gone for good, a
folder it would replace is as it was, and no blob is left behind."""
import pytest

from strongroom.appliance.errors import QuotaExceeded, StorageError
from strongroom.appliance.service import consistency
from strongroom.appliance.service.copying import Copies
from tests.support.sessions import admin_session, get, put

MIB = 1024 * 1024


@pytest.fixture
def trees(app):
    admin = app.admin()
    admin.add_client("acme")
    admin.add_client("beta", quota=10 * MIB)
    boss = admin_session(app)
    boss.mkdir("/acme/big")
    for i in range(4):
        put(boss, f"/acme/big/f{i}.txt", f"file {i}".encode())
    boss.mkdir("/beta/target")
    put(boss, "/beta/target/keep.txt", b"keep me")
    return boss


def _fail_on_third_file(monkeypatch, session):
    """Every file of a copy or move goes through Copies.copy_file: the third one fails."""
    real, calls = Copies.copy_file, []

    def faulty(self, src, dst, version_id=None):
        calls.append(src)
        if len(calls) == 3:
            raise StorageError("injected: the disk went away")
        return real(self, src, dst, version_id)

    monkeypatch.setattr(Copies, "copy_file", faulty)


def _names(session, path):
    return sorted(e.name for e in session.list(path) if not e.name.startswith("@"))


@pytest.mark.parametrize("move", [False, True])
@pytest.mark.parametrize("onto", ["/beta/new", "/beta/target"])
def test_a_copy_failing_halfway_changes_nothing(app, trees, monkeypatch, move, onto):
    boss = trees
    _fail_on_third_file(monkeypatch, boss)
    with pytest.raises(StorageError):
        if move:
            boss.rename("/acme/big", onto, overwrite=True, replace=True)
        else:
            boss.copy("/acme/big", onto, overwrite=True)
    assert _names(boss, "/beta") == ["target"]
    assert _names(boss, "/beta/target") == ["keep.txt"]
    assert get(boss, "/beta/target/keep.txt") == b"keep me"
    assert _names(boss, "/acme/big") == ["f0.txt", "f1.txt", "f2.txt", "f3.txt"]
    assert boss.usage("/beta")[0] == 7
    assert boss.list("/beta/@trash") == []
    assert consistency.check(app)["ok"]


def test_a_copy_that_cannot_fit_is_refused_before_it_starts(app, trees):
    boss = trees
    put(boss, "/acme/big/large.bin", bytes(11 * MIB))
    with pytest.raises(QuotaExceeded):
        boss.rename("/acme/big", "/beta/big")
    assert _names(boss, "/beta") == ["target"]
    assert "large.bin" in _names(boss, "/acme/big")
