"""Maintenance (appliance.service.maintenance) in the service layer, on SQLite and
PostgreSQL, driven by an injected clock: version rows are made old by setting their
times, and `now` is handed to the run. Retention thins a year of saves as
retention_rules says, pinned versions and the two newest stay; expired trash goes
with its versions; the history budget takes the oldest first; a dry run changes
nothing; blobs go only once the rows are committed (and those of a run killed after
its commit go at the next run); one run at a time (the lease); every purge is in the
audit trail, which still verifies."""
import json
import threading
import time

import pytest
from sqlalchemy import select, update

from strongroom.appliance.db.models import AuditEvent, Client, MaintenanceLease, Node, Version
from strongroom.appliance.errors import BadRequest, NotFound
from strongroom.appliance.service import retention_rules
from strongroom.appliance.service.maintenance import Journal
from strongroom.appliance.service.maintenance_lease import Lease, LeaseTaken
from tests.support.sessions import client_session, get, put

DAY, HOUR = 86400.0, 3600.0
NOW = 1_800_000_000.0          # 2027-01-15: the injected clock


@pytest.fixture
def acme(app):
    return client_session(app, "acme")


def retain(app, client="acme", **options):
    """Store `client`'s own retention options (seconds, bytes, counts)."""
    with app.db.write() as s:
        s.execute(update(Client).where(Client.name == client)
                  .values(retention=json.dumps(options)))


def version_rows(app, client="acme"):
    with app.db.read() as s:
        return list(s.execute(select(Version.id, Version.created_at, Version.blob_id,
                                     Version.node_id)
                              .join(Node, Node.id == Version.node_id)
                              .join(Client, Client.id == Node.client_id)
                              .where(Client.name == client).order_by(Version.id)))


def age_versions(app, times):
    """Set created_at of the versions {id: time}."""
    with app.db.write() as s:
        for vid, ts in times.items():
            s.execute(update(Version).where(Version.id == vid).values(created_at=ts))


def pin(app, version_id):
    with app.db.write() as s:
        s.execute(update(Version).where(Version.id == version_id).values(pinned=True))


def delete_at(app, acme, path, when):
    """Delete `path` and say it was deleted at `when`; returns its node id."""
    node_id = acme.stat(path).node_id
    acme.remove(path, recursive=True)
    with app.db.write() as s:
        s.execute(update(Node).where(Node.id == node_id).values(deleted_at=when))
    return node_id


def on_disk(app):
    return set(app.provider.blob_ids())


def events(app, action):
    with app.db.read() as s:
        return list(s.execute(select(AuditEvent.path, AuditEvent.detail, AuditEvent.actor)
                              .where(AuditEvent.action == action).order_by(AuditEvent.id)))


def run(app, **kw):
    results = app.admin().maintenance(now=NOW, **kw)
    return {r["client"]: r for r in results}


def test_a_year_of_saves_is_thinned_as_the_rules_say(app, acme):
    # a save a day for a year, and six in the last two days
    for i in range(365 + 6):
        put(acme, "/book.xlsx", b"v%d" % i)
    rows = version_rows(app)
    times = {r.id: NOW - (365 - i) * DAY - 3 * HOUR for i, r in enumerate(rows[:365])}
    times.update({r.id: NOW - (i + 1) * 7 * HOUR for i, r in enumerate(reversed(rows[365:]))})
    age_versions(app, times)
    pinned = rows[100].id                 # a day the weekly thinning would drop
    pin(app, pinned)
    retain(app, keep_all=2 * DAY)
    rules = retention_rules.policy(app.config, json.dumps({"keep_all": 2 * DAY}))
    facts = [retention_rules.VersionFacts(r.id, times[r.id], 2, r.id == pinned) for r in rows]
    expected = retention_rules.to_remove(facts, NOW, rules)
    assert 250 < len(expected) < 300 and pinned not in expected

    result = run(app)["acme"]

    left = {r.id for r in version_rows(app)}
    assert left == {r.id for r in rows} - expected
    assert result["versions"] == len(expected) and result["blobs"] == len(expected)
    assert result["bytes"] == sum(len(b"v%d" % i) for i, r in enumerate(rows) if r.id in expected)
    assert {rows[-1].id, rows[-2].id, pinned} <= left
    assert not on_disk(app) & {r.blob_id for r in rows if r.id in expected}
    listed = acme.list("/@versions/book.xlsx")
    assert sorted(int(e.name.split(" v")[1].split(" ")[0]) for e in listed) == sorted(left)
    assert get(acme, "/book.xlsx") == b"v370"
    gone = events(app, "purge-version")
    assert len(gone) == len(expected)
    assert all(p == "/acme/book.xlsx" and a == "maintenance" for p, _d, a in gone)
    assert {int(d.split()[1]) for _p, d, _a in gone} == expected
    assert app.admin().verify_audit().bad is None
    assert app.admin().doctor()["ok"]
    # a second run at the same time finds nothing more
    assert run(app)["acme"]["versions"] == 0


def test_the_two_newest_and_the_current_version_stay(app, acme):
    for i in range(5):
        put(acme, "/a.txt", b"%d" % i)
    rows = version_rows(app)
    age_versions(app, {r.id: NOW - 400 * DAY + i for i, r in enumerate(rows)})
    retain(app, keep_all=HOUR, max_age=DAY, max_versions=1)
    run(app)
    assert [r.id for r in version_rows(app)] == [rows[-2].id, rows[-1].id]
    assert get(acme, "/a.txt") == b"4"


def test_expired_trash_goes_with_its_versions_and_what_is_below(app, acme):
    acme.mkdir("/case")
    acme.mkdir("/case/sub")
    put(acme, "/case/sub/a.txt", b"a1")
    put(acme, "/case/sub/a.txt", b"a2")
    put(acme, "/case/early.txt", b"e")
    put(acme, "/young.txt", b"y")
    put(acme, "/kept.txt", b"k")
    put(acme, "/live.txt", b"l")
    blobs = {r.id: r.blob_id for r in version_rows(app)}
    delete_at(app, acme, "/case/early.txt", NOW - 40 * DAY)   # an item inside an item
    case = delete_at(app, acme, "/case", NOW - 31 * DAY)
    case_name = _item(acme, case)
    young = delete_at(app, acme, "/young.txt", NOW - 29 * DAY)
    kept = delete_at(app, acme, "/kept.txt", NOW - 100 * DAY)
    pin(app, _only_version(app, kept))
    retain(app, trash_days=30 * DAY)

    result = run(app)["acme"]

    assert result["trash_items"] == 2 and result["versions"] == 0 and result["blobs"] == 3
    names = sorted(e.name for e in acme.list("/@trash"))
    assert len(names) == 2 and names[0].endswith(" kept.txt") and names[1].endswith(" young.txt")
    with app.db.read() as s:
        assert s.get(Node, case) is None and s.get(Node, young) is not None
        assert s.get(Node, kept) is not None
    left = {r.id for r in version_rows(app)}
    assert len(left) == 3
    assert on_disk(app) & set(blobs.values()) == {blobs[v] for v in left}
    purged = events(app, "purge-trash")
    paths = sorted(p for p, _d, _a in purged)
    assert paths == ["/acme/case", "/acme/case/early.txt"]
    assert all("trash expiry" in d for _p, d, _a in purged)
    assert get(acme, "/live.txt") == b"l"
    with pytest.raises(NotFound):
        acme.stat(f"/@trash/{case_name}")
    assert app.admin().doctor()["ok"] and app.admin().verify_audit().bad is None


def _only_version(app, node_id):
    with app.db.read() as s:
        return s.scalar(select(Version.id).where(Version.node_id == node_id))


def _item(acme, node_id):
    return next(e.name for e in acme.list("/@trash") if f" d{node_id} " in e.name)


def test_the_history_budget_takes_the_oldest_first(app, acme):
    for i in range(4):
        put(acme, "/a.txt", b"A" * 100 + b"%d" % i)      # 101 bytes each
    put(acme, "/b.txt", b"B" * 300)
    put(acme, "/c.txt", b"C" * 50)
    put(acme, "/c.txt", b"C" * 60)
    rows = version_rows(app)
    a, b, c = rows[:4], rows[4], rows[5:]
    # made within keep_all, so retention itself removes nothing
    age_versions(app, {a[0].id: NOW - 10 * HOUR, a[1].id: NOW - 8 * HOUR,
                       a[2].id: NOW - 3 * HOUR, a[3].id: NOW - 2 * HOUR,
                       b.id: NOW - 9 * HOUR, c[0].id: NOW - 11 * HOUR,
                       c[1].id: NOW - HOUR})
    delete_at(app, acme, "/b.txt", NOW - 7 * HOUR)
    # history: a0 a1 a2 (303) + c0 (50); trash: b (300): 653 bytes
    retain(app, keep_all=DAY, history_quota=400)

    result = run(app)["acme"]

    # oldest first: c0 (11 h, but one of c's two newest: stays), a0 (10 h),
    # a1 (8 h), then the trash item b (deleted 7 h ago) brings it to 151
    assert [r["reason"] for r in result["removed"]] == ["history budget"] * 3
    assert result["versions"] == 2 and result["trash_items"] == 1
    left = {r.id for r in version_rows(app)}
    assert left == {a[2].id, a[3].id, c[0].id, c[1].id}
    assert acme.list("/@trash") == []


def test_a_dry_run_changes_nothing_and_plans_what_the_run_does(app, acme):
    for i in range(6):
        put(acme, "/a.txt", b"%d" % i)
    put(acme, "/gone.txt", b"g")
    rows = version_rows(app)
    age_versions(app, {r.id: NOW - (60 - 7 * i) * DAY for i, r in enumerate(rows[:6])})
    delete_at(app, acme, "/gone.txt", NOW - 60 * DAY)
    retain(app, keep_all=DAY, trash_days=DAY, max_versions=3)
    before = (version_rows(app), on_disk(app), len(events(app, "purge-version")))

    dry = run(app, dry_run=True)["acme"]

    assert (version_rows(app), on_disk(app), len(events(app, "purge-version"))) == before
    assert dry["dry_run"] and dry["versions"] == 3 and dry["trash_items"] == 1
    real = run(app)["acme"]
    assert {k: v for k, v in real.items() if k != "dry_run"} == \
        {k: v for k, v in dry.items() if k != "dry_run"}
    assert len(version_rows(app)) == len(before[0]) - dry["blobs"]


def test_blobs_are_deleted_only_after_the_rows_are_committed(app, acme, monkeypatch):
    for i in range(4):
        put(acme, "/a.txt", b"%d" % i)
    rows = version_rows(app)
    age_versions(app, {r.id: NOW - 100 * DAY + i for i, r in enumerate(rows)})
    retain(app, keep_all=DAY, max_versions=2)
    seen = []
    real_delete = app.provider.delete_blob

    def deleting(blob_id):
        with app.db.read() as s:      # another transaction: what is committed
            seen.append(s.scalar(select(Version.id).where(Version.blob_id == blob_id)))
        real_delete(blob_id)
    monkeypatch.setattr(app.provider, "delete_blob", deleting)
    run(app)
    assert seen == [None, None]


def test_blobs_of_a_run_killed_after_its_commit_go_at_the_next_run(app, acme, monkeypatch):
    for i in range(4):
        put(acme, "/a.txt", b"%d" % i)
    rows = version_rows(app)
    age_versions(app, {r.id: NOW - 100 * DAY + i for i, r in enumerate(rows)})
    retain(app, keep_all=DAY, max_versions=2)

    def killed(blob_id):
        raise SystemExit("killed")        # the process dies right after the commit
    monkeypatch.setattr(app.provider, "delete_blob", killed)
    with pytest.raises(SystemExit):
        run(app)
    monkeypatch.undo()
    assert len(version_rows(app)) == 2
    assert not app.admin().doctor()["ok"]               # two blobs no row names
    with app.db.write() as s:                           # the dead process's lease ran out
        s.execute(update(MaintenanceLease).values(expires_at=0.0))
    run(app)
    assert app.admin().doctor()["ok"]
    assert on_disk(app) >= {r.blob_id for r in rows[2:]}


def test_a_run_that_fails_before_its_commit_keeps_its_blobs(app, acme, monkeypatch):
    for i in range(4):
        put(acme, "/a.txt", b"%d" % i)
    rows = version_rows(app)
    age_versions(app, {r.id: NOW - 100 * DAY + i for i, r in enumerate(rows)})
    retain(app, keep_all=DAY, max_versions=2)
    real_write = Journal.write

    def failing(journal, blob_ids):
        real_write(journal, blob_ids)         # the journal is written, then it fails
        raise RuntimeError("the database went away")
    monkeypatch.setattr(Journal, "write", failing)
    with pytest.raises(RuntimeError):
        run(app)
    monkeypatch.undo()
    assert len(version_rows(app)) == 4 and app.admin().doctor()["ok"]
    run(app)      # its journal names blobs rows still hold: they stay until this run
    assert len(version_rows(app)) == 2
    assert app.admin().doctor()["ok"]


def test_one_run_at_a_time(app):
    held = Lease(app.db)
    held.take()
    with pytest.raises(LeaseTaken, match=r"^maintenance is running in process \d+ on .+; "
                                         r"try later$"):
        app.admin().maintenance(now=NOW)
    assert app.admin().maintenance(now=NOW, dry_run=True)      # a dry run needs no lease
    held.release()
    assert app.admin().maintenance(now=NOW)


def test_of_many_takers_at_once_exactly_one_gets_the_lease(app):
    for _round in range(3):
        won, lost, barrier = [], [], threading.Barrier(6)

        def take():
            lease = Lease(app.db)
            barrier.wait()
            try:
                lease.take()
                won.append(lease)
            except LeaseTaken:
                lost.append(lease)
        threads = [threading.Thread(target=take) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(won) == 1 and len(lost) == 5
        won[0].release()


def test_a_lease_of_a_dead_process_is_taken_over(app):
    Lease(app.db).take()
    with app.db.write() as s:
        holder = s.scalar(select(MaintenanceLease.holder))
        host = holder.rsplit(":", 2)[0]
        s.execute(update(MaintenanceLease).values(holder=f"{host}:999999999:dead"))
    Lease(app.db).take()
    with app.db.write() as s:        # one of another host is not: it may be running
        s.execute(update(MaintenanceLease).values(holder="elsewhere:1:x",
                                                  expires_at=time.time() + 60))
    with pytest.raises(LeaseTaken, match="process 1 on elsewhere"):
        Lease(app.db).take()


def test_blobs_no_row_names_go_once_they_are_old(app, acme):
    put(acme, "/a.txt", b"a")
    put(acme, "/a.txt", b"b")
    old, new = version_rows(app)
    with app.db.write() as s:            # two blobs nothing names: one old, one new
        s.execute(update(Version).where(Version.id == old.id).values(blob_id="0" * 32))
        s.execute(update(Version).where(Version.id == new.id).values(blob_id="1" * 32))
    import os
    aged = app.provider.blob_path(old.blob_id)
    os.utime(aged, (time.time() - 3600, time.time() - 3600))
    assert run(app, dry_run=True)[None]["removed"] == [old.blob_id]
    assert old.blob_id in on_disk(app)
    assert run(app)[None]["removed"] == [old.blob_id]
    assert old.blob_id not in on_disk(app) and new.blob_id in on_disk(app)
    assert [d for _p, d, a in events(app, "purge-blob")] == \
        [f"removed stray blob {old.blob_id}"]


def test_the_daemon_thread_skips_a_held_run_survives_a_failure_and_goes_on(data_dir, caplog):
    from sqlalchemy import text
    from strongroom.appliance import daemon
    from strongroom.appliance.app import App
    conf = data_dir / "strongroom.toml"
    conf.write_text(conf.read_text().replace('# interval = "15m"', 'interval = "1s"'))
    app = App(data_dir)
    stop = threading.Event()
    thread = threading.Thread(target=daemon._maintain, args=(app, stop), daemon=True)
    try:
        acme = client_session(app, "acme")
        for i in range(3):
            put(acme, "/a.txt", b"%d" % i)
        retain(app, keep_all=1, max_versions=2)
        held = Lease(app.db)
        held.take()
        thread.start()
        caplog.set_level("INFO", logger="strongroom")
        assert _until(lambda: "maintenance skipped: maintenance is running in process"
                      in caplog.text)
        assert len(version_rows(app)) == 3
        with app.db.write() as s:      # a failure: the lease table is gone for a while
            s.execute(text("ALTER TABLE maintenance_leases RENAME TO leases_away"))
        assert _until(lambda: "maintenance failed: " in caplog.text)
        failures = [r for r in caplog.records if r.getMessage().startswith("maintenance failed")]
        assert all("\n" not in r.getMessage() and r.exc_info is None for r in failures)
        with app.db.write() as s:
            s.execute(text("ALTER TABLE leases_away RENAME TO maintenance_leases"))
            s.execute(update(MaintenanceLease).values(expires_at=0.0))
        assert _until(lambda: len(version_rows(app)) == 2)
        assert thread.is_alive()
        assert _until(lambda: "maintenance removed 1 versions" in caplog.text)
    finally:
        stop.set()
        thread.join(30)
        app.close()
    assert not thread.is_alive()


def _until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.parametrize("now", [float("nan"), float("inf")])
def test_a_time_that_is_not_a_number_is_refused_and_changes_nothing(app, now):
    """maintenance run --now nan (or inf): one clear error, not an unexpected
    StopIteration from the thinning table, and nothing removed."""
    session = client_session(app, "acme")
    for i in range(4):
        put(session, "/f.txt", b"v%d" % i)
    for dry_run in (True, False):
        with pytest.raises(BadRequest, match="--now"):
            app.admin().maintenance(dry_run=dry_run, now=now)
    with app.db.read() as s:
        assert s.query(Version).count() == 4
