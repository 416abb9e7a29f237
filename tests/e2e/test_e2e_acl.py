"""One table of (user, operation, path, expected outcome), run over SFTP, WebDAV, the
web portal and the CLI (`strongroom acl check`) against the real daemon: the same
answer everywhere, because every adapter asks the one Session decision point. The
portal runs the rows it has forms for (list, read, write, mkdir, delete, rename;
copy as a browser does it: download, then upload); locks are WebDAV's.

Each protocol gets its own client tree, set up the same way:
    /report.txt /inbox/a.txt /private/secret.txt, and the library /handbook/guide.txt;
    /inbox/gone.txt and /private/gone.txt were deleted (they are in /@trash)
    client (all its users): read on /, read+write on /inbox
    alice (a user of the client): also delete on /inbox
    sam (staff): read+write on /CLIENT/inbox only
The rows run in order; effects of earlier rows (a file written) are relied on by
later ones. The CLI only decides, so the test applies its allowed effects itself.
"""
import base64
import http.client
import json
import ssl
from urllib.parse import quote

import paramiko
import pytest

from strongroom.appliance.errors import NotFound
from tests.support import postgres
from tests.support.daemon import HOST, Daemon, User, running_daemon
from tests.support.portal import PortalClient

pytestmark = [pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
              pytest.mark.slow]     # started first (tests/conftest.py)
PROTOCOLS = ("sftp", "dav", "web", "cli")
LOCKINFO = ('<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
            '</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>parity</D:owner>'
            '</D:lockinfo>')
PW = "Parity-pass-0123456789"
ROWS = [
    ("alice", "list", "/", None, "ok"),
    ("alice", "read", "/report.txt", None, "ok"),
    ("alice", "write", "/report.txt", None, "denied"),          # overwrite without write
    ("alice", "write", "/{p}-new.txt", None, "denied"),
    ("alice", "mkdir", "/{p}-dir", None, "denied"),
    ("alice", "write", "/inbox/{p}-new.txt", None, "ok"),
    ("alice", "write", "/inbox/a.txt", None, "ok"),             # overwrite
    ("alice", "mkdir", "/inbox/{p}-sub", None, "ok"),
    ("alice", "copy", "/report.txt", "/inbox/{p}-copy.txt", "ok"),
    ("alice", "copy", "/inbox/a.txt", "/{p}-copy.txt", "denied"),
    ("alice", "rename", "/inbox/{p}-new.txt", "/{p}-moved.txt", "denied"),     # into: no write
    ("alice", "rename", "/report.txt", "/inbox/{p}-report.txt", "denied"),     # out of: no delete
    ("alice", "rename", "/inbox/{p}-copy.txt", "/inbox/{p}-renamed.txt", "ok"),
    ("alice", "delete", "/inbox/{p}-renamed.txt", None, "ok"),
    ("alice", "delete", "/report.txt", None, "denied"),
    ("bob", "read", "/inbox/a.txt", None, "ok"),
    ("bob", "delete", "/inbox/a.txt", None, "denied"),
    ("bob", "rename", "/inbox/a.txt", "/inbox/{p}-b.txt", "denied"),
    ("alice", "list", "/handbook", None, "ok"),
    ("alice", "read", "/handbook/guide.txt", None, "ok"),
    ("alice", "write", "/handbook/{p}.txt", None, "denied"),
    ("alice", "delete", "/handbook/guide.txt", None, "denied"),
    ("alice", "copy", "/handbook/guide.txt", "/inbox/{p}-guide.txt", "ok"),
    ("alice", "read", "/t-sftp/report.txt", None, "notfound"),  # another client: not in view
    ("alice", "list", "/t-dav", None, "notfound"),
    ("sam", "list", "/{c}", None, "ok"),
    ("sam", "list", "/{c}/inbox", None, "ok"),
    ("sam", "list", "/{c}/private", None, "notfound"),          # hidden, not just denied
    ("sam", "read", "/{c}/report.txt", None, "notfound"),
    ("sam", "write", "/{c}/inbox/{p}-sam.txt", None, "ok"),
    ("sam", "delete", "/{c}/inbox/{p}-sam.txt", None, "denied"),
    ("sam", "read", "/handbook/guide.txt", None, "ok"),
    ("sam", "write", "/handbook/{p}-sam.txt", None, "denied"),
    ("sam", "list", "/acme", None, "notfound"),                 # a client sam is not granted
    # the version view: browsable and copyable with the file's rights, never writable
    ("alice", "list", "/@versions", None, "ok"),
    ("alice", "list", "/@versions/inbox/a.txt", None, "ok"),
    ("alice", "read", "/@versions/inbox/a.txt/{v}", None, "ok"),
    ("alice", "copy", "/@versions/inbox/a.txt/{v}", "/inbox/{p}-restored.txt", "ok"),
    ("alice", "write", "/@versions/inbox/{p}-x.txt", None, "denied"),
    ("alice", "delete", "/@versions/inbox/a.txt/{v}", None, "denied"),
    ("alice", "rename", "/@versions/inbox/a.txt/{v}", "/inbox/{p}-moved.txt", "denied"),
    ("bob", "read", "/@versions/inbox/a.txt/{v}", None, "ok"),
    ("sam", "list", "/{c}/@versions/inbox", None, "ok"),
    ("sam", "read", "/{c}/@versions/inbox/a.txt/{v}", None, "ok"),
    ("sam", "list", "/{c}/@versions/private", None, "notfound"),
    ("sam", "list", "/{c}/@versions/report.txt", None, "notfound"),
    # the trash: the same, with the rights of the original path
    ("alice", "list", "/@trash", None, "ok"),
    ("alice", "list", "/@trash/inbox", None, "ok"),
    ("alice", "read", "/@trash/inbox/{t}", None, "ok"),
    ("alice", "read", "/@trash/private/{tp}", None, "ok"),
    ("alice", "copy", "/@trash/inbox/{t}", "/inbox/{p}-undeleted.txt", "ok"),
    ("alice", "copy", "/@trash/private/{tp}", "/private/{p}-undeleted.txt", "denied"),
    ("alice", "write", "/@trash/inbox/{p}-x.txt", None, "denied"),
    ("alice", "delete", "/@trash/inbox/{t}", None, "denied"),
    ("alice", "rename", "/@trash/inbox/{t}", "/inbox/{p}-moved-back.txt", "denied"),
    ("bob", "read", "/@trash/inbox/{t}", None, "ok"),
    ("sam", "list", "/{c}/@trash", None, "ok"),
    ("sam", "read", "/{c}/@trash/inbox/{t}", None, "ok"),
    ("sam", "list", "/{c}/@trash/private", None, "notfound"),
    ("sam", "read", "/{c}/@trash/private/{tp}", None, "notfound"),
    # live names that look like view names are decided as what they are: {lt} is a
    # hidden folder named like an item that once was /inbox, {lv} a file named like
    # a version of one
    ("alice", "list", "/@trash/{lt}", None, "ok"),
    ("alice", "read", "/@trash/{lt}/{lti}", None, "ok"),
    ("alice", "list", "/@versions/{lv}", None, "ok"),
    ("sam", "list", "/{c}/@trash/{lt}", None, "notfound"),
    ("sam", "read", "/{c}/@trash/{lt}/{lti}", None, "notfound"),
    ("sam", "list", "/{c}/@versions/{lv}", None, "notfound"),
    ("sam", "read", "/{c}/@versions/{lv}/{lvv}", None, "notfound"),
    # locks (WebDAV only; SFTP has none): the write right on the target
    ("alice", "lock", "/inbox/a.txt", None, "ok"),
    ("alice", "lock", "/inbox/{p}-lock-null.txt", None, "ok"),
    ("alice", "lock", "/report.txt", None, "denied"),
    ("alice", "lock", "/", None, "denied"),
    ("alice", "lock", "/handbook", None, "denied"),
    ("alice", "lock", "/handbook/guide.txt", None, "denied"),
    ("alice", "lock", "/@versions/inbox/a.txt", None, "denied"),
    ("alice", "lock", "/@trash/inbox/{t}", None, "denied"),
    ("bob", "lock", "/private/secret.txt", None, "denied"),
    ("sam", "lock", "/{c}", None, "denied"),
    ("sam", "lock", "/{c}/private", None, "denied"),       # as writing a new name there
    ("sam", "lock", "/{c}/inbox/a.txt", None, "ok"),
]
TRASH_LIKE = "2026-01-01 00-00-00 d5 inbox"
VERSION_LIKE = "2026-12-01 21-11-53 v1 inbox"
FIRST_VERSION = {}     # protocol -> the name of /inbox/a.txt's first version in its tree
TRASHED = {}           # protocol -> {"t": item in /@trash/inbox, "tp": in /@trash/private}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def daemon(request, tmp_path_factory):
    """The parity table runs against the daemon on SQLite and on PostgreSQL (issue 18)."""
    if request.param == "sqlite":
        yield from running_daemon(tmp_path_factory, "e2e-acl", setup=_setup)
        return
    with postgres.fresh_database() as url:
        yield from running_daemon(tmp_path_factory, "e2e-acl-pg", setup=_setup,
                                  database_url=url)


def _setup(d: Daemon) -> None:
    from strongroom.appliance.app import App
    from strongroom.appliance.service import ADMIN
    from tests.support.sessions import put
    app = App(d.data_dir)
    admin = app.admin()
    try:
        for login in ("sam",):
            admin.add_user(login, client=None, staff=True, email=None, password=PW,
                           with_totp=False)
        admin.add_library("handbook", None)
        boss = app.session(ADMIN, "test")
        put(boss, "/handbook/guide.txt", b"how to send us documents\n")
        for p in PROTOCOLS:
            c = f"t-{p}"
            admin.add_client(c)
            for login in (f"alice-{p}", f"bob-{p}"):
                admin.add_user(login, client=c, staff=False, email=None, password=PW,
                               with_totp=False)
            for folder in ("inbox", "private"):
                boss.mkdir(f"/{c}/{folder}")
            for path in ("report.txt", "inbox/a.txt", "private/secret.txt"):
                put(boss, f"/{c}/{path}", f"{path} of {c}\n".encode())
            FIRST_VERSION[p] = boss.list(f"/{c}/@versions/inbox/a.txt")[0].name
            for key, folder in (("t", "inbox"), ("tp", "private"), ("lti", TRASH_LIKE)):
                if key == "lti":
                    boss.mkdir(f"/{c}/{folder}")
                put(boss, f"/{c}/{folder}/gone.txt", b"deleted, not lost\n")
                boss.remove(f"/{c}/{folder}/gone.txt")
                TRASHED.setdefault(p, {})[key] = boss.list(f"/{c}/@trash/{folder}")[0].name
            for content in (b"one", b"two"):
                put(boss, f"/{c}/{VERSION_LIKE}", content)
            TRASHED[p]["lvv"] = boss.list(f"/{c}/@versions/{VERSION_LIKE}")[0].name
            admin.revoke(f"/{c}", client=c)
            admin.grant(f"/{c}", client=c, rights="read")
            admin.grant(f"/{c}/inbox", client=c, rights="read,write")
            admin.grant(f"/{c}/inbox", login=f"alice-{p}", rights="delete")
            admin.grant(f"/{c}/inbox", login="sam", rights="read,write")
    finally:
        app.close()


def _login(who, p):
    return "sam" if who == "sam" else f"{who}-{p}"


def _fill(path, p):
    if path is None:
        return None
    for key in ("tp", "t", "lti", "lvv"):
        path = path.replace("{%s}" % key, TRASHED[p][key])
    path = path.replace("{lt}", TRASH_LIKE).replace("{lv}", VERSION_LIKE)
    return path.replace("{p}", p).replace("{c}", f"t-{p}").replace("{v}", FIRST_VERSION[p])


# -- SFTP ----------------------------------------------------------------------------

class SFTP:
    def __init__(self, d):
        self.d, self.clients = d, {}

    def client(self, login):
        if login not in self.clients:
            t = paramiko.Transport((HOST, self.d.sftp_port))
            t.connect(username=login, password=PW)
            self.clients[login] = (t, paramiko.SFTPClient.from_transport(t))
        return self.clients[login][1]

    def do(self, login, op, path, dst):
        if op == "lock":
            return None   # SFTP has no locks
        c = self.client(login)
        try:
            if op == "list":
                c.listdir(path)
            elif op == "read":
                with c.open(path, "rb") as f:
                    f.read()
            elif op == "write":
                with c.open(path, "wb") as f:
                    f.write(b"written over sftp\n")
            elif op == "mkdir":
                c.mkdir(path)
            elif op == "copy":
                with c.open(path, "rb") as f:
                    data = f.read()
                with c.open(dst, "wb") as f:
                    f.write(data)
            elif op == "rename":
                c.posix_rename(path, dst)
            elif op == "delete":
                c.remove(path)
        except PermissionError:
            return "denied"
        except FileNotFoundError:
            return "notfound"
        except OSError as e:
            return f"error {e}"
        return "ok"

    def close(self):
        for t, _ in self.clients.values():
            t.close()


# -- WebDAV --------------------------------------------------------------------------

class DAV:
    def __init__(self, d):
        self.d = d
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname, self.ctx.verify_mode = False, ssl.CERT_NONE

    def request(self, login, method, path, body=None, headers=None, with_headers=False):
        conn = http.client.HTTPSConnection(HOST, self.d.webdav_port, context=self.ctx,
                                           timeout=60)
        auth = base64.b64encode(f"{login}:{PW}".encode()).decode()
        try:
            conn.request(method, quote(path), body=body,
                         headers={"Authorization": f"Basic {auth}", **(headers or {})})
            resp = conn.getresponse()
            resp.read()
            return (resp.status, resp.headers) if with_headers else resp.status
        finally:
            conn.close()

    def lock_and_unlock(self, login, path) -> int:
        status, headers = self.request(login, "LOCK", path, LOCKINFO, {
            "Content-Type": "application/xml", "Timeout": "Infinite"}, with_headers=True)
        if status in (200, 201):
            assert self.request(login, "UNLOCK", path, headers={
                "Lock-Token": headers["Lock-Token"]}) == 204
        return status

    def do(self, login, op, path, dst):
        dest = {"Destination": f"https://{HOST}:{self.d.webdav_port}{quote(dst or '')}",
                "Overwrite": "T"}
        status = {
            "list": lambda: self.request(login, "PROPFIND", path, headers={"Depth": "1"}),
            "read": lambda: self.request(login, "GET", path),
            "write": lambda: self.request(login, "PUT", path, b"written over webdav\n"),
            "mkdir": lambda: self.request(login, "MKCOL", path),
            "copy": lambda: self.request(login, "COPY", path, headers=dest),
            "rename": lambda: self.request(login, "MOVE", path, headers=dest),
            "delete": lambda: self.request(login, "DELETE", path),
            "lock": lambda: self.lock_and_unlock(login, path),
        }[op]()
        if status in (200, 201, 204, 207):
            return "ok"
        return {403: "denied", 404: "notfound"}.get(status, f"status {status}")

    def close(self):
        pass


# -- the web portal ---------------------------------------------------------------

class WEB:
    """The portal's forms, as a logged-in browser sends them (tests/support/portal.py)."""

    def __init__(self, d):
        self.d, self.clients = d, {}

    def client(self, login):
        if login not in self.clients:
            c = PortalClient(self.d, User(login, PW, None))
            c.login()
            self.clients[login] = c
        return self.clients[login]

    def do(self, login, op, path, dst):
        if op == "lock":
            return None    # WebDAV's alone
        c = self.client(login)
        folder, name = path.rsplit("/", 1)
        if op == "copy":   # a browser copies by downloading and uploading again
            r = c.download(path)
            if r.status_code != 200:
                return self._outcome(r.status_code)
            folder, name = dst.rsplit("/", 1)
            return self._outcome(c.upload(folder or "/", {name: r.content}).status_code)
        r = {"list": lambda: c.get("/files", {"p": path}),
             "read": lambda: c.download(path),
             "write": lambda: c.upload(folder or "/", {name: b"written in the portal\n"}),
             "mkdir": lambda: c.post("/mkdir", {"name": name}, {"p": folder or "/"}),
             "delete": lambda: c.post("/delete", params={"p": path}),
             "rename": lambda: c.post("/rename", {"to": dst}, {"p": path})}[op]()
        return self._outcome(r.status_code)

    @staticmethod
    def _outcome(status):
        if status in (200, 303):
            return "ok"
        return {403: "denied", 404: "notfound"}.get(status, f"status {status}")

    def close(self):
        for c in self.clients.values():
            c.close()


# -- CLI -------------------------------------------------------------------------------

class CLI:
    """`strongroom acl check`; allowed effects are applied by an admin session."""
    NEEDS = {"list": [("list", 0)], "read": [("read", 0)], "write": [("write", 0)],
             "mkdir": [("write", 0)], "delete": [("delete", 0)],
             "copy": [("read", 0), ("write", 1)], "rename": [("delete", 0), ("write", 1)],
             "lock": [("write", 0)]}

    def __init__(self, d):
        from strongroom.appliance.app import App
        from strongroom.appliance.service import ADMIN
        self.d, self.app = d, App(d.data_dir)
        self.admin = self.app.session(ADMIN, "test")

    def do(self, login, op, path, dst):
        canon = (lambda v: v) if login == "sam" else self._canonical(login)
        for action, which in self.NEEDS[op]:
            target = canon((path, dst)[which])     # the CLI takes full tree paths
            out = self.d.cli("acl", "check", login, action, target, "--json", check=True)
            verdict = json.loads(out.stdout)["verdict"]
            if verdict != "allowed":
                return {"denied": "denied", "not found": "notfound"}[verdict]
        self._apply(login, op, path, dst)
        return "ok"

    def _apply(self, login, op, path, dst):
        from tests.support.sessions import put
        canon = (lambda v: v) if login == "sam" else self._canonical(login)
        if op == "write":
            put(self.admin, canon(path), b"written by the cli test\n")
        elif op == "lock":   # a lock on a new name makes an empty file (lock-null)
            try:
                self.admin.stat(canon(path))
            except NotFound:
                put(self.admin, canon(path), b"")
        elif op == "mkdir":
            self.admin.mkdir(canon(path))
        elif op == "copy":
            self.admin.copy(canon(path), canon(dst), overwrite=True)
        elif op == "rename":
            self.admin.rename(canon(path), canon(dst), overwrite=True)
        elif op == "delete":
            self.admin.remove(canon(path))

    def _canonical(self, login):
        def canon(path):
            if path.startswith("/handbook"):
                return path
            return f"/t-{login.split('-', 1)[1]}{path}"
        return canon

    def close(self):
        self.app.close()


ADAPTERS = {"sftp": SFTP, "dav": DAV, "web": WEB, "cli": CLI}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_one_table_same_answers(daemon, protocol):
    adapter = ADAPTERS[protocol](daemon)
    try:
        got = [adapter.do(_login(who, protocol), op, _fill(path, protocol),
                          _fill(dst, protocol)) for who, op, path, dst, _ in ROWS]
    finally:
        adapter.close()
    mismatches = [(row, outcome) for row, outcome in zip(ROWS, got)
                  if outcome is not None and outcome != row[4]]
    assert not mismatches, "\n".join(f"{r[:4]}: expected {r[4]}, got {o}"
                                     for r, o in mismatches)


def test_views_list_only_what_is_granted(daemon):
    sftp = SFTP(daemon)
    try:
        assert sorted(sftp.client("sam").listdir("/")) == ["handbook", "t-cli", "t-dav",
                                                           "t-sftp", "t-web"]
        assert sorted(sftp.client("sam").listdir("/t-sftp")) == ["@trash", "@versions", "inbox"]
        assert "handbook" in sftp.client("alice-sftp").listdir("/")
        assert "private" in sftp.client("alice-sftp").listdir("/")
    finally:
        sftp.close()


def test_acl_cli_grant_list_revoke(daemon):
    out = daemon.cli("acl", "grant", "/acme", "--user", "sam", "--rights", "read", "--json",
                     check=True)
    assert json.loads(out.stdout) == {"path": "/acme", "user": "sam", "rights": "read"}
    listed = json.loads(daemon.cli("acl", "list", "--user", "sam", "--json", check=True).stdout)
    assert {"path": "/acme", "user": "sam", "rights": "read"} in listed
    daemon.cli("acl", "revoke", "/acme", "--user", "sam", check=True)
    bad = daemon.cli("acl", "grant", "/acme", "--user", "bob-sftp", "--rights", "read")
    assert bad.returncode != 0 and "another client" in bad.stderr
    bad = daemon.cli("acl", "grant", "/acme/nope", "--client", "acme", "--rights", "read")
    assert bad.returncode != 0 and bad.stderr.strip() == "strongroom: error: no folder /acme/nope"
    libs = json.loads(daemon.cli("library", "list", "--json", check=True).stdout)
    assert libs == [{"name": "handbook", "used_bytes": 25, "clients": "*"}]
