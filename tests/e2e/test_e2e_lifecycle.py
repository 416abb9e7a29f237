"""The admin's lifecycle commands against the real daemon, over WebDAV (curl) and
SFTP (OpenSSH sftp, and paramiko for sessions kept open across a command): a
disabled client's users do not log in and their live sessions end; a renamed
client's open sessions carry on and staff see the new name; a removed user's
drive session, app password and SFTP session stop; a renamed user logs in under
the new login only. Each test makes its own client, so they do not depend on
each other."""
import dataclasses
import json
import time

import paramiko
import pyotp
import pytest

from tests.support.daemon import HOST, running_daemon

WITHIN = 10    # seconds: the daemon re-reads accounts and clients well within this


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    # refused logins all come from 127.0.0.1: keep the address counter out of the way
    yield from running_daemon(tmp_path_factory, "e2e-lifecycle", {
        "auth": {"address_block_after": 10000, "address_delay_after": 10000}})


def new_client(daemon, name: str) -> None:
    daemon.cli("client", "add", name, "--quota", "1GiB", check=True)
    daemon.cli("acl", "grant", f"/{name}", "--user", "staff", "--rights", "read,write",
               check=True)


def status(daemon, user, method: str, path: str = "/", *args, secret: str | None = None) -> int:
    """The HTTP status of one request as `user` (with `secret` instead of its password)."""
    if secret is not None:
        user = dataclasses.replace(daemon.users[user] if isinstance(user, str) else user,
                                   password=secret)
    return daemon.request(user, method, path, *args).status


def propfind(daemon, user, path: str = "/", secret: str | None = None) -> int:
    return status(daemon, user, "PROPFIND", path, "-H", "Depth: 1", secret=secret)


def sftp_session(daemon, user, password: str | None = None):
    """A paramiko SFTP session kept open; (transport, client)."""
    t = paramiko.Transport((HOST, daemon.sftp_port))
    t.connect(username=user.login, password=password or user.password)
    return t, paramiko.SFTPClient.from_transport(t)


def sftp_ok(daemon, user) -> bool:
    return daemon.run_sftp(user, ["ls /"]).returncode == 0


def eventually(check, seconds: float = WITHIN) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def code(user, offset: int = 0) -> str:
    """The user's TOTP code `offset` steps from now; a previous step's code with 10 s left."""
    if offset < 0 and 30 - time.time() % 30 < 10:
        time.sleep(30 - time.time() % 30 + 0.5)
    return pyotp.TOTP(user.totp_secret).at(time.time() + offset * 30)


def test_a_disabled_clients_users_do_not_log_in_and_their_live_sessions_end(daemon):
    new_client(daemon, "delta")
    dave = daemon.add_user("dave", "delta", totp=False)
    dina = daemon.add_user("dina", "delta")            # with TOTP: a drive session
    mount = dina.password + code(dina)
    assert propfind(daemon, dina, secret=mount) == 207
    assert propfind(daemon, dave) == 207 and sftp_ok(daemon, dave)
    t, sftp = sftp_session(daemon, dave)
    assert sftp.listdir("/") is not None
    out = daemon.cli("client", "set", "delta", "--disable", "--json", check=True)
    assert json.loads(out.stdout)["disabled"] is True
    assert propfind(daemon, dina, secret=mount) == 401, "the drive session ends at once"
    assert eventually(lambda: propfind(daemon, dave) == 401)
    assert not sftp_ok(daemon, dave)
    assert eventually(lambda: not t.is_active()), "the live SFTP session must end"
    t.close()
    assert propfind(daemon, "staff", "/delta/") == 207, "staff still see a disabled client"
    daemon.cli("client", "set", "delta", "--enable", check=True)
    assert propfind(daemon, dave) == 207 and sftp_ok(daemon, dave)
    assert propfind(daemon, dina, secret=mount) == 401, "the drive is mapped again"
    assert [e["outcome"] for e in json.loads(daemon.cli(
        "audit", "list", "--user", "dave", "--action", "login", "--json").stdout)][-3:] == \
        ["failed", "ok", "ok"]


def test_a_renamed_clients_open_sessions_carry_on_and_staff_see_the_new_name(daemon):
    new_client(daemon, "omega")
    olga, staff = daemon.add_user("olga", "omega", totp=False), daemon.users["staff"]
    assert status(daemon, olga, "PUT", "/before.txt", "--data-binary", "before") == 201
    t, sftp = sftp_session(daemon, olga)
    ts, staff_sftp = sftp_session(daemon, staff)
    assert "omega" in staff_sftp.listdir("/")
    daemon.cli("client", "rename", "omega", "omega-ltd", check=True)
    assert "before.txt" in sftp.listdir("/")         # at once, under either name
    assert propfind(daemon, olga) == 207              # (answered 500 in the first 2 s)
    assert eventually(lambda: "omega-ltd" in staff_sftp.listdir("/"))
    assert "omega" not in staff_sftp.listdir("/")
    # Sessions remember client names for up to 2 s (session.access): what is written
    # in that window is audited under the old name (see the closing note of issue 10).
    time.sleep(2.5)
    # the client's own users: their tree is their root, under any name
    assert "before.txt" in sftp.listdir("/")
    with sftp.open("/after-sftp.txt", "w") as f:
        f.write(b"sftp")
    assert status(daemon, olga, "PUT", "/after-dav.txt", "--data-binary", "dav") == 201
    assert propfind(daemon, olga) == 207 and sftp_ok(daemon, olga)
    assert t.is_active()
    # staff: /omega-ltd over both protocols, /omega is gone
    assert sorted(staff_sftp.listdir("/omega-ltd")) == [
        "@trash", "@versions", "after-dav.txt", "after-sftp.txt", "before.txt"]
    assert propfind(daemon, staff, "/omega-ltd/") == 207
    assert propfind(daemon, staff, "/omega/") == 404
    got = daemon.request(staff, "GET", "/omega-ltd/after-sftp.txt")
    assert (got.status, got.body) == (200, b"sftp")
    for session in (t, ts):
        session.close()
    events = json.loads(daemon.cli("audit", "list", "--client", "omega-ltd", "--all",
                                   "--json").stdout)
    paths = {(e["action"], e["path"]) for e in events}
    assert {("write", "/omega/before.txt"), ("write", "/omega-ltd/after-sftp.txt"),
            ("write", "/omega-ltd/after-dav.txt")} <= paths, paths


def test_a_removed_users_drive_session_app_password_and_sftp_session_stop(daemon):
    new_client(daemon, "sigma")
    rita = daemon.add_user("rita", "sigma")
    mount = rita.password + code(rita, -1)
    assert propfind(daemon, rita, secret=mount) == 207
    secret = json.loads(daemon.cli("user", "app-password", "create", "rita", "--label", "NAS",
                                   "--json", check=True).stdout)["password"]
    assert propfind(daemon, rita, secret=secret) == 207
    t, sftp = sftp_session(daemon, rita, rita.password + code(rita))
    assert sftp.listdir("/") is not None
    out = json.loads(daemon.cli("user", "remove", "rita", "--json", check=True).stdout)
    assert out["login"] == "rita"
    assert propfind(daemon, rita, secret=mount) == 401
    assert propfind(daemon, rita, secret=secret) == 401
    assert eventually(lambda: not t.is_active()), "the live SFTP session must end"
    t.close()
    logins = json.loads(daemon.cli("audit", "list", "--user", "rita", "--action", "login",
                                   "--json").stdout)
    assert {e["protocol"] for e in logins if e["outcome"] == "ok"} == {"webdav", "sftp"}


def test_a_renamed_user_logs_in_under_the_new_login_only(daemon):
    new_client(daemon, "kappa")
    kim = daemon.add_user("kim", "kappa", totp=False)
    assert propfind(daemon, kim) == 207
    t, sftp = sftp_session(daemon, kim)
    daemon.cli("user", "rename", "kim", "kim.k", check=True)
    renamed = dataclasses.replace(kim, login="kim.k")
    daemon.users["kim.k"] = renamed
    assert eventually(lambda: propfind(daemon, kim) == 401)
    assert not sftp_ok(daemon, kim)
    assert eventually(lambda: not t.is_active()), "a session under the old login ends"
    t.close()
    assert propfind(daemon, renamed) == 207 and sftp_ok(daemon, renamed)
    logins = json.loads(daemon.cli("audit", "list", "--user", "kim.k", "--action", "login",
                                   "--json").stdout)
    assert {e["actor"] for e in logins if e["outcome"] == "ok"} == {"kim", "kim.k"}


LOCK_BODY = ('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
             '</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>')


def lock(daemon, user, path: str) -> int:
    return daemon.request(user, "LOCK", path, "-H", "Timeout: Second-3600",
                          "-H", "Content-Type: application/xml", "--data", LOCK_BODY).status


def test_a_lock_taken_right_after_a_change_is_decided_on_the_database(daemon):
    """A lock outlives its request: one taken in the seconds a session still remembers
    an old client name, or an account just disabled, must not be stored under the old
    name (where it would bind whoever takes the name next) or at all."""
    new_client(daemon, "lk1")
    carol = daemon.add_user("carol", "lk1", totp=False)
    assert daemon.request(carol, "PUT", "/f.txt", "--data-binary", "x").status == 201
    assert daemon.request(carol, "GET", "/f.txt").status == 200     # the login is remembered
    daemon.cli("client", "rename", "lk1", "lk2", check=True)
    assert lock(daemon, carol, "/f.txt") == 200
    roots = [r["path"] for r in json.loads(daemon.cli("locks", "list", "--json",
                                                      check=True).stdout)]
    assert "/lk2/f.txt" in roots and not any(r.startswith("/lk1/") for r in roots), roots
    daemon.cli("locks", "clear", "/lk2/f.txt", check=True)
    assert daemon.request(carol, "GET", "/f.txt").status == 200
    daemon.cli("user", "disable", "carol", check=True)
    assert lock(daemon, carol, "/f.txt") in (401, 403)
    roots = [r["path"] for r in json.loads(daemon.cli("locks", "list", "--json",
                                                      check=True).stdout)]
    assert "/lk2/f.txt" not in roots, roots
