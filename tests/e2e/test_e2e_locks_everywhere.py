"""A WebDAV lock binds every protocol (issue 18), on SQLite and on PostgreSQL, with real
clients: while alice holds an exclusive lock, carol (a user of the same client) is refused
a WebDAV PUT (423), an SFTP put, rename or remove (a failure saying "locked by another
user") and the portal's upload, rename and delete (423, the same words on the page);
alice's own SFTP put goes through (SFTP has no tokens to send; README), her WebDAV PUT
with the token too. Her MOVE keeps the lock at the new path, her DELETE ends it, UNLOCK
frees the file."""
import json
import re

import paramiko
import pytest

from tests.support.daemon import HOST, Daemon, running_on
from tests.support.portal import PortalClient

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
LOCKINFO = ('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            '</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>e2e</D:owner>'
            '</D:lockinfo>')
REFUSED = "locked by another user"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def daemon(request, tmp_path_factory):
    """alice and carol of acme, on SQLite or on a PostgreSQL database of its own."""
    yield from running_on(request.param, tmp_path_factory, "locks-everywhere",
                          setup=lambda d: d.add_user("carol", "acme", totp=False))


class Sftp:
    """One paramiko SFTP connection of a user."""

    def __init__(self, d: Daemon, login: str):
        self.transport = paramiko.Transport((HOST, d.sftp_port))
        self.transport.connect(username=login, password=d.users[login].password)
        self.c = paramiko.SFTPClient.from_transport(self.transport)

    def put(self, path: str, data: bytes) -> None:
        with self.c.open(path, "wb") as f:
            f.write(data)

    def get(self, path: str) -> bytes:
        with self.c.open(path, "rb") as f:
            return f.read()

    def refusal(self, action, *args) -> str:
        """The message of the failure `action(*args)` must meet."""
        with pytest.raises(OSError) as e:
            action(*args)
        return str(e.value)

    def close(self) -> None:
        self.transport.close()


@pytest.fixture
def sftp(daemon):
    opened: dict[str, Sftp] = {}

    def connect(login: str) -> Sftp:
        if login not in opened:
            opened[login] = Sftp(daemon, login)
        return opened[login]
    yield connect
    for s in opened.values():
        s.close()


@pytest.fixture
def carol_web(daemon):
    c = PortalClient(daemon, daemon.users["carol"])
    c.login()
    yield c
    c.close()


def put(d: Daemon, user: str, path: str, data: bytes, *headers: str):
    src = d.path("src")
    src.write_bytes(data)
    return d.request(user, "PUT", path, "-T", src, *headers).status


def lock(d: Daemon, user: str, path: str) -> str:
    r = d.request(user, "LOCK", path, "-H", "Timeout: Second-600", "-H",
                  "Content-Type: application/xml", "--data", LOCKINFO)
    m = re.search(rb"opaquelocktoken:[0-9a-fx]+", r.body)
    assert r.status in (200, 201) and m, (r.status, r.body)
    return m.group().decode()


def locked_paths(d: Daemon) -> list[str]:
    out = d.cli("locks", "list", "/acme", "--json", check=True).stdout
    return sorted(lk["path"] for lk in json.loads(out))


def test_a_lock_refuses_other_users_everywhere_and_follows_its_file(daemon, sftp, carol_web):
    assert put(daemon, "alice", "/report.txt", b"alice 1") == 201
    token = lock(daemon, "alice", "/report.txt")
    carol = sftp("carol")
    assert put(daemon, "carol", "/report.txt", b"carol") == 423
    assert REFUSED in carol.refusal(carol.put, "/report.txt", b"carol")
    assert REFUSED in carol.refusal(carol.c.posix_rename, "/report.txt", "/carol.txt")
    assert REFUSED in carol.refusal(carol.c.remove, "/report.txt")
    for r in (carol_web.upload("/", {"report.txt": b"carol"}),
              carol_web.post("/rename", {"to": "/carol.txt"}, {"p": "/report.txt"}),
              carol_web.post("/delete", params={"p": "/report.txt"})):
        assert r.status_code == 423 and REFUSED in r.text, (r.status_code, r.text[:300])
    assert carol.get("/report.txt") == b"alice 1"

    sftp("alice").put("/report.txt", b"alice 2")               # the lock's own user
    assert put(daemon, "alice", "/report.txt", b"alice 3", "-H", f"If: (<{token}>)") == 204
    assert carol.get("/report.txt") == b"alice 3"

    moved = daemon.request("alice", "MOVE", "/report.txt", "-H", f"If: (<{token}>)",
                           "-H", f"Destination: {daemon.url('/moved.txt')}")
    assert moved.status == 201, moved.body
    assert locked_paths(daemon) == ["/acme/moved.txt"]
    assert REFUSED in carol.refusal(carol.put, "/moved.txt", b"carol")
    carol.put("/report.txt", b"the old name is free")
    assert put(daemon, "carol", "/moved.txt", b"carol") == 423

    assert daemon.request("alice", "UNLOCK", "/moved.txt",
                          "-H", f"Lock-Token: <{token}>").status == 204
    assert locked_paths(daemon) == []
    carol.put("/moved.txt", b"carol at last")
    assert carol_web.post("/delete", params={"p": "/moved.txt"}).status_code == 303


def test_a_lock_ends_with_its_file(daemon, sftp):
    assert put(daemon, "alice", "/short.txt", b"alice") == 201
    token = lock(daemon, "alice", "/short.txt")
    sftp("alice").c.rename("/short.txt", "/shorter.txt")       # over SFTP it follows too
    assert locked_paths(daemon) == ["/acme/shorter.txt"]
    carol = sftp("carol")
    assert REFUSED in carol.refusal(carol.c.remove, "/shorter.txt")
    assert daemon.request("alice", "DELETE", "/shorter.txt",
                          "-H", f"If: (<{token}>)").status == 204
    assert locked_paths(daemon) == []
    carol.put("/shorter.txt", b"a new file of that name")
    assert carol.get("/shorter.txt") == b"a new file of that name"
