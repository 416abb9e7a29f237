"""In-process helpers over a real `App`: users and their Sessions, uploads and reads.

The fixtures that make the App (on SQLite and on PostgreSQL) are in
tests/service/conftest.py; end-to-end tests use `put` and `get` on a daemon's
data directory too.
"""
import hashlib

from strongroom.appliance.db import repo
from strongroom.appliance.service import ADMIN
from strongroom.providers import digest as digests

PASSWORD = "Correct-horse-battery-staple-42"


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


def staff_session(app, login="sam"):
    """A new staff user's Session (it sees nothing until granted)."""
    app.admin().add_user(login, client=None, staff=True, email=None, password=PASSWORD,
                         with_totp=False)
    return app.session(app.auth.password_login(login, PASSWORD, "test"), "test")


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
