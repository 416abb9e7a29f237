"""The quota is checked where usage changes, at commit, in the same statement, on
SQLite and PostgreSQL: uploads opened at the same time cannot together exceed it."""
import threading

import pytest

from strongroom.appliance.errors import QuotaExceeded
from tests.support.sessions import client_session

MIB = 1024 * 1024


def _open(session, path, size):
    upload = session.open_write(path)
    upload.append(bytes(size))
    return upload


def test_uploads_opened_together_commit_within_the_quota(app):
    acme = client_session(app, "acme", quota=10 * MIB)
    first, second = _open(acme, "/a.bin", 6 * MIB), _open(acme, "/b.bin", 6 * MIB)
    first.commit()
    with pytest.raises(QuotaExceeded):
        second.commit()
    assert acme.usage()[0] == 6 * MIB
    assert [e.name for e in acme.list("/") if not e.name.startswith("@")] == ["a.bin"]


def test_commits_racing_in_threads_stay_within_the_quota(app):
    acme = client_session(app, "acme", quota=10 * MIB)
    uploads = [_open(acme, f"/{i}.bin", 4 * MIB) for i in range(4)]
    start, outcomes = threading.Barrier(len(uploads)), []

    def commit(upload):
        start.wait()
        try:
            upload.commit()
            outcomes.append("ok")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=commit, args=(u,)) for u in uploads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["ok", "ok", "refused", "refused"]
    assert acme.usage()[0] == 8 * MIB
