"""Key ids and rotation (appliance.service.keys_rotation, keys_store, keys_status) on
both databases: counts, resuming from a failure inside any batch, derived keys and
digests that do not change, uploads that straddle a rotation, a second process whose
remembered keys went stale, and a master key that is not the appliance's."""
import pytest
from sqlalchemy import select

from strongroom.appliance.app import App
from strongroom.appliance.db.models import Client, Version
from strongroom.appliance.keysource import FileSource, KeyUnavailable
from strongroom.appliance.service import keys_status
from strongroom.appliance.service.keys_rotation import ClientRotation, MasterRotation
from strongroom.providers import crypto
from tests.support.sessions import client_session, get, put

FILES = {f"/f{i}.txt": f"file {i}\n".encode() * (i + 1) for i in range(5)}


class Boom(Exception):
    pass


def _failing(kind, at: int):
    """A rotation that fails inside the batch that would bring it to `at` keys done."""
    class Failing(kind):
        def in_batch(self, s, done):
            if done >= at:
                raise Boom(f"inside the batch reaching {done}")
    return Failing


@pytest.fixture
def filled(app):
    """Clients acme (five files, two versions of one), beta and gamma (one file each)."""
    sessions = {name: client_session(app, name) for name in ("acme", "beta", "gamma")}
    for path, data in FILES.items():
        put(sessions["acme"], path, data)
    put(sessions["acme"], "/f0.txt", b"second version")
    put(sessions["beta"], "/b.txt", b"beta")
    put(sessions["gamma"], "/g.txt", b"gamma")
    return sessions


def assert_reads_back(app) -> None:
    acme = app.session(app.auth.password_login("acme-user", *_pw()), "test", "127.0.0.1")
    assert get(acme, "/f0.txt") == b"second version"
    for path, data in list(FILES.items())[1:]:
        assert get(acme, path) == data
    first = acme.versions("/f0.txt")[0]
    assert get(acme, "/f0.txt", first.id) == FILES["/f0.txt"]


def _pw():
    from tests.support.sessions import PASSWORD
    return PASSWORD, "test", "127.0.0.1"


def key_ids(app) -> tuple[set[str], set[str]]:
    """(master key ids wrapping client keys, client key ids wrapping data keys)."""
    status = keys_status.status(app)
    return set(status["wrapped_by_master"]), {k for c in status["clients"]
                                              for k, n in c["data_keys"].items() if n}


def test_rotate_master_rewraps_every_client_key_and_keeps_derived_keys(app, filled, data_dir):
    old = app.keyring.current_id
    anchor_key = app.keyring.derive("audit chain")
    out = MasterRotation(app, batch=1).run()
    assert out["old_key_id"] == old and out["rewrapped"] == 3 and out["pending"] is None
    assert key_ids(app)[0] == {out["new_key_id"]}
    assert (data_dir / "master.key").read_bytes() != b"" and \
        FileSource(data_dir / "master.key").load() == app.keyring.master(out["new_key_id"])
    app.close()
    again = App(data_dir)
    try:
        assert again.keyring.current_id == out["new_key_id"]
        assert again.keyring.derive("audit chain") == anchor_key
        assert_reads_back(again)
        assert again.admin().verify_audit().problem is None
        assert keys_status.problems(again) == []
        assert again.admin().audit_events(action="keys-rotate-master")
    finally:
        again.close()


def test_rotate_client_rewraps_its_data_keys_and_keeps_its_digests(app, filled):
    with app.db.read() as s:
        digests = dict(s.execute(select(Version.id, Version.digest)).all())
    old = keys_status.status(app)["clients"][0]["key_id"]
    out = ClientRotation(app, batch=2).run("acme")
    assert out["old_key_id"] == old and out["rewrapped"] == 6
    assert_reads_back(app)
    [acme] = [c for c in keys_status.status(app)["clients"] if c["name"] == "acme"]
    assert acme["key_id"] == out["new_key_id"] and acme["data_keys"] == {out["new_key_id"]: 6}
    # the same content uploaded after the rotation gets the same keyed digest
    put(filled["acme"], "/again.txt", FILES["/f3.txt"])
    with app.db.read() as s:
        assert dict(s.execute(select(Version.id, Version.digest)
                              .where(Version.id.in_(digests))).all()) == digests
        newest = s.scalar(select(Version.digest).order_by(Version.id.desc()).limit(1))
    assert newest in digests.values()
    assert keys_status.problems(app) == []


@pytest.mark.parametrize("at", [1, 2, 3])
def test_a_master_rotation_failing_inside_any_batch_resumes(app, filled, data_dir, at):
    with pytest.raises(Boom):
        _failing(MasterRotation, at)(app, batch=1).run()
    assert_reads_back(app)
    problems = keys_status.problems(app)
    assert any("strongroom keys rotate-master" in p for p in problems), problems
    out = MasterRotation(app, batch=1).run()
    assert out["rewrapped"] == 3 - (at - 1)
    assert key_ids(app)[0] == {out["new_key_id"]} and keys_status.problems(app) == []
    app.close()
    again = App(data_dir)
    try:
        assert_reads_back(again)
        assert again.admin().verify_audit().problem is None
    finally:
        again.close()


@pytest.mark.parametrize("at", [1, 3, 6])
def test_a_client_rotation_failing_inside_any_batch_resumes(app, filled, at):
    with pytest.raises(Boom):
        _failing(ClientRotation, at)(app, batch=1).run("acme")
    assert_reads_back(app)
    problems = keys_status.problems(app)
    assert any("strongroom keys rotate-client acme" in p for p in problems), problems
    put(filled["acme"], "/during.txt", b"written while half rotated")
    out = ClientRotation(app, batch=1).run("acme")
    assert out["rewrapped"] == 6 - (at - 1)
    assert_reads_back(app)
    assert get(filled["acme"], "/during.txt") == b"written while half rotated"
    assert keys_status.problems(app) == []


def test_a_master_rotation_whose_store_failed_resumes_at_the_store(app, filled, monkeypatch):
    source = app.key_source

    def refuse(key):
        raise OSError("the disk went away")
    monkeypatch.setattr(source, "store", refuse)
    with pytest.raises(OSError):
        MasterRotation(app).run()
    monkeypatch.undo()
    out = MasterRotation(app).run()
    assert out["rewrapped"] == 0 and out["pending"] is None
    assert key_ids(app)[0] == {out["new_key_id"]} and keys_status.problems(app) == []
    assert source.load() == app.keyring.master(out["new_key_id"])


def test_a_source_we_cannot_write_gets_the_new_key_in_a_file(app, filled, data_dir,
                                                              monkeypatch, tmp_path):
    def sealed(key):
        raise KeyUnavailable("credential strongroom-master is sealed by systemd-creds")
    monkeypatch.setattr(app.key_source, "store", sealed)
    with pytest.raises(KeyUnavailable, match="--new-key-to"):
        MasterRotation(app).run()
    out = MasterRotation(app).run(new_key_to=tmp_path / "new.key")
    assert "systemd-creds" in out["pending"]
    new_key = (tmp_path / "new.key").read_bytes()
    assert (tmp_path / "new.key").stat().st_mode & 0o777 == 0o600
    assert any("still holds the old key" in p for p in keys_status.problems(app))
    app.close()
    stale = App(data_dir)              # the source still gives the old key: it serves
    assert_reads_back(stale)
    stale.close()
    (data_dir / "master.key").write_bytes(new_key)      # systemd-creds, then restart
    fresh = App(data_dir)
    try:
        assert_reads_back(fresh)
        assert keys_status.problems(fresh) == []
        assert keys_status.status(fresh)["next_master_key_id"] is None
    finally:
        fresh.close()


def test_an_upload_opened_before_a_client_rotation_commits_after_it(app, filled):
    upload = filled["acme"].open_write("/straddling.txt")
    upload.append(b"opened under the old key, ")
    out = ClientRotation(app).run("acme")
    upload.append(b"committed after the rotation")
    upload.commit()
    assert get(filled["acme"], "/straddling.txt") == \
        b"opened under the old key, committed after the rotation"
    with app.db.read() as s:
        newest = s.scalar(select(Version.client_key_id).order_by(Version.id.desc()).limit(1))
    assert newest == out["new_key_id"]
    assert keys_status.problems(app) == []


def test_another_process_finds_keys_rotated_under_it(app, filled, data_dir):
    other = App(data_dir)               # the daemon: it remembers the old keys
    try:
        reader = other.session(other.auth.password_login("acme-user", *_pw()), "test",
                               "127.0.0.1")
        assert get(reader, "/f1.txt") == FILES["/f1.txt"]
        ClientRotation(app).run("acme")
        MasterRotation(app).run()
        app.admin().add_client("delta")                  # wrapped by the new master key
        assert_reads_back(other)
        put(reader, "/after.txt", b"written by the other process")
        assert get(filled["acme"], "/after.txt") == b"written by the other process"
        other.admin().add_client("epsilon")
        delta = client_session(other, "delta", create_client=False)
        put(delta, "/d.txt", b"delta")
        assert get(delta, "/d.txt") == b"delta"
        assert keys_status.problems(app) == []
    finally:
        other.close()


def test_a_master_key_that_is_not_the_appliances_stops_the_start(app, filled, data_dir,
                                                                  tmp_path):
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(crypto.new_key())
    with pytest.raises(KeyUnavailable, match="is not this appliance's .*wrapped by id"):
        App(data_dir, key_source=FileSource(wrong))


def test_new_clients_get_key_ids_and_the_running_master_id(app, filled):
    with app.db.read() as s:
        rows = s.execute(select(Client.key_id, Client.master_key_id)).all()
    assert len({k for k, _ in rows}) == len(rows) == 3
    assert {m for _, m in rows} == {app.keyring.current_id}


def test_a_source_we_cannot_write_is_refused_before_anything_changes(app, filled, tmp_path,
                                                                      monkeypatch):
    """A systemd credential: without --new-key-to the rotation does not begin (no next
    key recorded, nothing rewrapped); an existing --new-key-to file is refused too."""
    from strongroom.appliance.db.models import ApplianceKey
    monkeypatch.setattr(app.key_source, "writable", False)
    before = key_ids(app)
    with pytest.raises(KeyUnavailable, match="--new-key-to FILE"):
        MasterRotation(app).run()
    (tmp_path / "taken.key").write_bytes(b"x")
    with pytest.raises(Exception, match="never overwrites"):
        MasterRotation(app).run(new_key_to=tmp_path / "taken.key")
    with app.db.read() as s:
        assert s.get(ApplianceKey, "master-next") is None
    assert key_ids(app) == before and (tmp_path / "taken.key").read_bytes() == b"x"


def test_status_sees_the_key_open_the_clients_mid_rotation(app, filled, data_dir):
    """`strongroom status` during an unfinished master rotation: the first client's key
    is wrapped by the next master key, which the source's key opens through its row."""
    from strongroom.appliance import health
    with pytest.raises(Boom):
        _failing(MasterRotation, 2)(app, batch=1).run()
    check = health.status(data_dir)["master_key"]
    assert check["ok"] is True and check["matches_database"] is True, check
