"""Provisioning: clients and users. Used by the CLI; every change is audited."""
import re

from appliance.db import repo
from appliance.db.models import Client, Grant, Node, User, UserKey
from appliance.errors import BadRequest, Conflict, NotFound
from appliance.session import audit
from appliance.session.adminlocks import AdminLocksMixin
from appliance.session.credentials import CredentialsMixin
from appliance.session.grants import GrantsMixin
from appliance.session.trees import TreesMixin
from auth import passwords, sshkeys, totp

DEFAULT_CLIENT_RIGHTS = "rwd"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Admin(CredentialsMixin, GrantsMixin, AdminLocksMixin, TreesMixin):
    def __init__(self, app, actor: str = "admin", protocol: str = "cli"):
        self.app, self.actor, self.protocol = app, actor, protocol

    def _audit(self, s, action, path, detail=None):
        """Every admin change is audited here, and may change access: sessions of
        this process drop what they remember (another process's within ACCESS_TTL)."""
        self.app.access_changed(s)
        self.app.audit.append(s, actor=self.actor, protocol=self.protocol, address=None,
                     action=action, path=path, detail=detail)

    def add_client(self, name: str, quota: int | None = None, *, kind: str = "client") -> dict:
        if not _NAME.match(name):
            raise BadRequest("client names are 1-64 letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
        with self.app.db.write() as s:
            existing = repo.client_by_name(s, name)
            if existing is not None:
                raise Conflict(f"a {existing.kind} named {name!r} already exists")
            client = Client(name=name, quota_bytes=quota, used_bytes=0, kind=kind,
                            wrapped_key=self.app.keyring.new_client_key())
            s.add(client)
            s.flush()
            s.add(Node(client_id=client.id, parent_id=None, name="", is_dir=True))
            if kind == "client":
                # its users may read, write and delete in the whole tree until the admin
                # replaces this grant with finer ones ('strongroom acl')
                s.add(Grant(client_id=client.id, path="/", subject_kind="client",
                            subject_id=client.id, rights=DEFAULT_CLIENT_RIGHTS))
            self._audit(s, f"{kind}-add", f"/{name}", f"quota={quota}")
            return _client_dict(client)

    def audit_events(self, **filters) -> list[dict]:
        """See appliance.session.audit.events; a login or action that can never match
        is refused (audit.check_filters)."""
        with self.app.db.read() as s:
            audit.check_filters(s, actor=filters.get("actor"), action=filters.get("action"))
            return audit.events(s, **filters)

    def verify_audit(self) -> audit.Verdict:
        """Check the chain (appliance.session.audit), after anchoring what this process
        itself added to it."""
        self.app.audit.anchor(self.app.db)
        with self.app.db.read() as s:
            return self.app.audit.verify(s)

    def list_clients(self) -> list[dict]:
        with self.app.db.read() as s:
            return [_client_dict(c) for c in repo.clients(s, "client")]

    def add_user(self, login: str, *, client: str | None, staff: bool, email: str | None,
                 password: str | None, with_totp: bool) -> dict:
        if not _NAME.match(login):
            raise BadRequest("logins are 1-64 letters, digits, '.', '_' or '-'")
        generated = password is None
        if generated:
            password = passwords.generate_password(login)
        try:
            passwords.check_policy(login, password)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        secret = totp.new_secret() if with_totp else None
        with self.app.db.write() as s:
            if repo.user_by_login(s, login) is not None:
                raise Conflict(f"user {login!r} already exists")
            client_row = None
            if not staff:
                client_row = repo.client_by_name(s, client)
                if client_row is None:
                    raise NotFound(f"no client named {client!r}")
            user = User(login=login, role="staff" if staff else "client",
                        client_id=client_row.id if client_row else None, email=email,
                        password_hash=passwords.hash_password(password), totp_secret=secret)
            s.add(user)
            self._audit(s, "user-add", None, f"login={login} role={user.role} client={client}")
        out = {"login": login, "role": user.role, "client": client if not staff else None,
               "email": email}
        if generated:
            out["password"] = password
        if secret:
            out["totp_secret"] = secret
            out["otpauth_uri"] = totp.provisioning_uri(secret, login)
        return out

    def _user(self, s, login: str):
        user = repo.user_by_login(s, login)
        if user is None:
            raise NotFound(f"no user named {login!r}")
        return user

    def add_key(self, login: str, line: str) -> dict:
        """Authorize an SSH public key (an authorized_keys line) for `login`."""
        try:
            key_type, data, comment = sshkeys.parse(line)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        fp = sshkeys.fingerprint(data)
        with self.app.db.write() as s:
            user = self._user(s, login)
            if any(k.fingerprint == fp for k in repo.keys_of(s, user.id)):
                raise Conflict(f"key {fp} is already authorized for {login}")
            s.add(UserKey(user_id=user.id, key_type=key_type, key_data=data, fingerprint=fp,
                          comment=comment))
            self._audit(s, "key-add", None, f"login={login} key={fp}")
        return {"login": login, "type": key_type, "fingerprint": fp, "comment": comment}

    def list_keys(self, login: str) -> list[dict]:
        with self.app.db.read() as s:
            return [{"login": login, "type": k.key_type, "fingerprint": k.fingerprint,
                     "comment": k.comment} for k in repo.keys_of(s, self._user(s, login).id)]

    def remove_key(self, login: str, fingerprint: str) -> None:
        with self.app.db.write() as s:
            user = self._user(s, login)
            keys = [k for k in repo.keys_of(s, user.id) if k.fingerprint == fingerprint]
            if not keys:
                raise NotFound(f"no key {fingerprint} for {login}")
            s.delete(keys[0])
            self._audit(s, "key-remove", None, f"login={login} key={fingerprint}")

    def list_users(self) -> list[dict]:
        from sqlalchemy import select
        with self.app.db.read() as s:
            return [{"login": u.login, "role": u.role,
                     "client": u.client.name if u.client else None, "email": u.email,
                     "totp": u.totp_secret is not None, "disabled": u.disabled}
                    for u in s.scalars(select(User).order_by(User.login))]


def _client_dict(c) -> dict:
    return {"name": c.name, "quota_bytes": c.quota_bytes, "used_bytes": c.used_bytes}
