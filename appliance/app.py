"""Composition root: wires config, database, key ring, storage and services together."""
import logging
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from sqlalchemy import event, orm

from strongroom import config as configmod
from strongroom import providers
from strongroom.appliance.db import Database, default_url, upgrade
from strongroom.appliance.db.rekey import rekey_legacy_digests
from strongroom.appliance.service import Principal, Session
from strongroom.appliance.service.access import ClientInfo
from strongroom.appliance.service.admin import Admin
from strongroom.appliance.service.audit import Chain
from strongroom.appliance.service.locks import LockStore
from strongroom.appliance.service.login import Authenticator
from strongroom.appliance.service.websessions import WebSessions
from strongroom.auth.acl import Grant
from strongroom.appliance import keysource
from strongroom.appliance.service import keys_store

if TYPE_CHECKING:   # prometheus_client is loaded only when metrics are turned on
    from strongroom.appliance.metrics import Metrics

log = logging.getLogger("strongroom")

# What the sessions of one principal remember (service.access), each value with the
# access generation and time.monotonic() it was read at: clients and libraries by
# name or by id, and a tree's grants by the tree's id.
ClientMemo: TypeAlias = dict[str | int, tuple[int, float, ClientInfo]]
GrantMemo: TypeAlias = dict[int, tuple[int, float, tuple[Grant, ...]]]
# The libraries a client sees, by client id ("staff": those staff see), with the
# time.monotonic() they were read at.
LibraryMemo: TypeAlias = dict[str | int | None, tuple[float, frozenset[str]]]


class App:
    """Everything a daemon or a CLI command needs, built from one data directory."""

    def __init__(self, data_dir: Path | str, *, migrate: bool = True,
                 key_source: keysource.KeySource | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.config = configmod.load(self.data_dir)
        # first: a config naming an unknown backend changes nothing (no migration)
        self.provider = providers.load(self.config)
        self.db = Database(self.config.database.url or default_url(self.data_dir))
        if migrate:
            upgrade(self.db)
        # where the master key comes from, and where a rotation puts the next one
        self.key_source = key_source or keysource.from_config(self.config)
        self.keyring = keys_store.open_keyring(self.db, self.key_source)
        self.audit = Chain(self.keyring.derive("audit chain"),
                           Path(self.config.audit.anchor_file))
        if migrate:
            self.audit.upgrade(self.db)
        if migrate:
            converted = rekey_legacy_digests(self.db, self.keyring)
            if converted:
                log.info("replaced %d plain SHA-256 digests by keyed ones", converted)
        self.auth = Authenticator(self.db, self.config, self.keyring.derive("drive sessions"),
                                  self.audit)
        self.locks = LockStore(self.db, self.config.webdav.lock_max)
        self.web_sessions = WebSessions(self.db, self.config.web)
        # How audit events name the administrator (the CLI: admin:<OS user>)
        self.admin_name = "admin"
        # Which libraries each client sees, remembered briefly (session.access).
        self.library_names: LibraryMemo = {}
        # Bumped by every change of clients, grants or libraries made in this process,
        # so that sessions drop what they remember of them (session.access).
        self.access_generation = 0
        self._access_memos: dict[tuple[str, int | None, str, int | None],
                                 tuple[ClientMemo, GrantMemo]] = {}
        # Prometheus metrics (appliance.metrics) when the daemon serves them; None
        # otherwise, and then nothing is counted anywhere.
        self.metrics: Metrics | None = None

    def enable_metrics(self, metrics: "Metrics") -> None:
        self.metrics = self.auth.metrics = metrics

    def access_changed(self, s: orm.Session | None = None) -> None:
        """Clients, grants or libraries changed: sessions drop what they remember.
        With the ORM session `s` of the change, once more when it commits, so that
        nothing read between the change and its commit is kept either."""
        self.access_generation += 1
        self.library_names.clear()
        if s is not None:
            event.listen(s, "after_commit", lambda _s: self.access_changed(), once=True)

    def access_memo(self, principal: Principal) -> tuple[ClientMemo, GrantMemo]:
        """The (clients, grants) caches the sessions of `principal` share (session.access)."""
        key = (principal.login, principal.user_id, principal.role, principal.client_id)
        memo = self._access_memos.get(key)
        if memo is None:
            memo = self._access_memos.setdefault(key, ({}, {}))
        return memo

    def session(self, principal: Principal, protocol: str, address: str | None = None, *,
                per_request: bool = False) -> Session:
        return Session(self, principal, protocol, address, per_request=per_request)

    def admin(self, actor: str | None = None) -> Admin:
        return Admin(self, actor or self.admin_name)

    def admin_principal(self) -> Principal:
        """The administrator, as audit events of this process name them."""
        return Principal(login=self.admin_name, role="admin")

    def close(self) -> None:
        """Anchor what this process added to the audit trail, then let go of the database."""
        self.audit.anchor(self.db)
        self.db.dispose()
