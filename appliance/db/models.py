"""The metadata schema. File contents never appear here: only wrapped keys and blob ids.

Folders and files are rows of `nodes` (parent pointer + name), so rename and move
are a single UPDATE. A node's content is its current row in `versions`; older
rows are the file's history. Deleted nodes keep their rows (deleted_at set).
"""
import time

from sqlalchemy import (BigInteger, Boolean, Float, ForeignKey, Index, Integer,
                        LargeBinary, String, Text, func, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


def _now() -> float:
    return time.time()


class Client(Base):
    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    # "client": an organisation's private tree; "library": a tree staff publish
    # read-only to every client (shared_with_all) or to the clients in library_members.
    kind: Mapped[str] = mapped_column(String(16), default="client", server_default="client")
    shared_with_all: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default=text("false"))
    display_name: Mapped[str | None] = mapped_column(String(200))
    # A disabled client's users cannot log in (session.login); staff still see its tree.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # NULL: the [retention] defaults; else a JSON object of the options this client
    # overrides (migration 0009).
    retention: Mapped[str | None] = mapped_column(Text)
    # Key ids (migration 0010; appliance.service.keys_store): `key_id` names the client
    # key (random, given when it is made); `master_key_id` the master key wrapping
    # wrapped_key, next_wrapped_key and wrapped_digest_key (NULL only until the first
    # start after the upgrade). next_*: the client's next key while `keys rotate-client`
    # rewraps its data keys. wrapped_digest_key: NULL while the digest key is derived
    # from the client key; kept from the first client rotation on, so that digests and
    # ETags stay the same when the client key changes.
    key_id: Mapped[str] = mapped_column(String(16))
    master_key_id: Mapped[str | None] = mapped_column(String(16))
    next_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    next_key_id: Mapped[str | None] = mapped_column(String(16))
    wrapped_digest_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Clients and libraries share one namespace, unique without regard to case.
    __table_args__ = (Index("uq_clients_name_ci", func.lower(name), unique=True),)


class LibraryMember(Base):
    __tablename__ = "library_members"
    library_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                            primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                           primary_key=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # "staff" | "client"
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The last TOTP time step accepted: a code is taken once, and never an older one.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    display_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))   # "en" | "sv" | "he"
    # off | immediate | hourly | daily | weekly; None: immediate for client users, daily
    # for staff (appliance.notify.frequency)
    notify_frequency: Mapped[str | None] = mapped_column(String(16))
    client: Mapped[Client | None] = relationship(lazy="joined")
    __table_args__ = (Index("uq_users_login_ci", func.lower(login), unique=True),)


class UserKey(Base):
    """An SSH public key a user may log in with (as OpenSSH's authorized_keys)."""
    __tablename__ = "user_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_type: Mapped[str] = mapped_column(String(64))
    key_data: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    __table_args__ = (Index("uq_user_keys", "user_id", "fingerprint", unique=True),)


class AppPassword(Base):
    """A per-device secret that logs in without a TOTP code; only its SHA-256 is kept
    (it is 120+ random bits, so a fast hash cannot be searched)."""
    __tablename__ = "app_passwords"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    expires_at: Mapped[float | None] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (Index("uq_app_passwords_label", "user_id", "label", unique=True),)


class DriveSession(Base):
    """A WebDAV mount opened with password+code: the exact credential string (argon2id
    hash only) keeps working from the same network until idle or too old."""
    __tablename__ = "drive_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    # HMAC of (user, network, credential) under a key derived from the master key:
    # found with one indexed query, so a refused login costs one argon2 check however
    # many drive sessions the account has, and the database alone cannot test guesses.
    lookup: Mapped[str | None] = mapped_column(String(64), index=True)
    network: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    last_used_at: Mapped[float] = mapped_column(Float, default=_now)
    expires_at: Mapped[float] = mapped_column(Float)


class LoginThrottle(Base):
    """Failed logins per account ('login:NAME') or source address ('addr:IP')."""
    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure: Mapped[float] = mapped_column(Float, default=0.0)
    blocked_until: Mapped[float] = mapped_column(Float, default=0.0)


class AclGrant(Base):
    """Rights on a folder of one tree (and everything below it), for one user or for
    every user of a client. `path` is '/' or '/a/b' inside the tree."""
    __tablename__ = "acl_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"),
                                           index=True)
    path: Mapped[str] = mapped_column(Text)
    subject_kind: Mapped[str] = mapped_column(String(8))   # "user" | "client"
    subject_id: Mapped[int] = mapped_column(Integer)
    rights: Mapped[str] = mapped_column(String(8))          # letters of "rwdm"
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    __table_args__ = (Index("uq_acl_grants", "client_id", "path", "subject_kind", "subject_id",
                            unique=True),
                      Index("ix_acl_grants_subject", "subject_kind", "subject_id"))


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"))
    name: Mapped[str] = mapped_column(String(255))
    is_dir: Mapped[bool] = mapped_column(Boolean)
    # A plain column, not a foreign key: versions already point at nodes, and a
    # cycle of constraints would complicate creation order on PostgreSQL.
    current_version_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    modified_at: Mapped[float] = mapped_column(Float, default=_now)
    deleted_at: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (
        Index("uq_nodes_live_name", "client_id", "parent_id", "name", unique=True,
              sqlite_where=text("deleted_at IS NULL"),
              postgresql_where=text("deleted_at IS NULL")),
    )


class Version(Base):
    __tablename__ = "versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    blob_id: Mapped[str] = mapped_column(String(32), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    # Keyed (providers.digest): "b3:<hex>", or "k1:<hex>" for a version that had a
    # plain SHA-256 before (converted at startup, appliance.db.rekey).
    digest: Mapped[str] = mapped_column(String(80))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    mtime: Mapped[float] = mapped_column(Float, default=_now)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    author: Mapped[str | None] = mapped_column(String(64))
    # The provider's hole list (chunks never written, read as zeros); NULL: none.
    holes: Mapped[str | None] = mapped_column(Text)
    # Never removed by retention, trash expiry or the history budget (migration 0009).
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The client key wrapping `wrapped_key`: the client's key_id, or its next_key_id
    # during a rotation (migration 0010).
    client_key_id: Mapped[str] = mapped_column(String(16), index=True)
    __table_args__ = (
        # Finds the digests left to convert without reading the table: once all are,
        # it is empty.
        Index("ix_versions_legacy_digest", "id", sqlite_where=text("digest NOT LIKE '%:%'"),
              postgresql_where=text("digest NOT LIKE '%:%'")),
    )


class ApplianceKey(Base):
    """Keys of the appliance itself (migration 0010; appliance.service.keys_store):
    'master' holds only the id of the current master key (never key material);
    'master-next' the next master key during `keys rotate-master`, wrapped by the
    current one; 'derive' the base of every derived key (the audit chain, drive
    sessions, invitations, backups), wrapped by the master key `master_key_id`."""
    __tablename__ = "appliance_keys"
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    master_key_id: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float, default=_now)


class Lock(Base):
    """WebDAV locks, keyed by canonical path '/<client>/<path>' so all views agree."""
    __tablename__ = "dav_locks"
    token: Mapped[str] = mapped_column(String(100), primary_key=True)
    root: Mapped[str] = mapped_column(Text, index=True)
    depth: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(Text)
    principal: Mapped[str] = mapped_column(String(64))
    timeout: Mapped[float] = mapped_column(Float)
    expire: Mapped[float] = mapped_column(Float)


class DeadProperty(Base):
    """WebDAV dead properties, attached to the node so they follow renames."""
    __tablename__ = "dav_properties"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)
    __table_args__ = (Index("uq_dav_properties", "node_id", "name", unique=True),)


class MaintenanceLease(Base):
    """One row per periodic job: the process running it and until when. A process
    takes the job only where the row's time has passed (appliance.service.maintenance)."""
    __tablename__ = "maintenance_leases"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[float] = mapped_column(Float)


class AuditEvent(Base):
    """One audited action. `hash` = sha256(prev_hash | canonical event): a chain."""
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(64))
    protocol: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    path: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """A single row whose update serialises appends to the audit chain across processes."""
    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger)
    # "sha256": plain digests (before 0004); "hmac": keyed from the master key
    scheme: Mapped[str] = mapped_column(String(16), default="hmac", server_default="sha256")


class WebSession(Base):
    """A logged-in portal browser: only the SHA-256 of its cookie is kept (the cookie is
    256 random bits), with the CSRF token its forms carry."""
    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    csrf: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    last_used_at: Mapped[float] = mapped_column(Float, default=_now)
    expires_at: Mapped[float] = mapped_column(Float)
    # A TOTP secret the account page showed, kept until a code confirms it.
    pending_totp: Mapped[str | None] = mapped_column(String(64))


class Invitation(Base):
    """A one-time link where an invited user sets a password and enrols TOTP; only the
    SHA-256 of its token is kept."""
    __tablename__ = "invitations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float)


class NotifyEvent(Base):
    """A change to a file or folder, written in the transaction that commits it (the
    outbox): the sender routes a tree's events once it has been quiet for [notify]
    quiet_period (routed_at), each to the users who may hear of it (notify_deliveries).
    `path` is inside the tree, as it was then; `old_path` that of a rename's source."""
    __tablename__ = "notify_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    # not a foreign key: a failed copy removes the nodes it made for good
    node_id: Mapped[int] = mapped_column(Integer)
    is_dir: Mapped[bool] = mapped_column(Boolean, default=False)
    path: Mapped[str] = mapped_column(Text)
    old_path: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(16))    # added|changed|deleted|renamed
    actor: Mapped[str] = mapped_column(String(64))
    # not a foreign key: the trail of a removed user's changes stays
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_role: Mapped[str] = mapped_column(String(16))  # admin | staff | client
    size: Mapped[int | None] = mapped_column(BigInteger)
    ts: Mapped[float] = mapped_column(Float, default=_now)
    routed_at: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (
        Index("ix_notify_events_unrouted", "client_id", "id",
              sqlite_where=text("routed_at IS NULL"),
              postgresql_where=text("routed_at IS NULL")),
        Index("ix_notify_events_ts", "ts"),
    )


class NotifyDelivery(Base):
    """An event a user is to hear of, waiting for that user's next digest (digest_id)."""
    __tablename__ = "notify_deliveries"
    event_id: Mapped[int] = mapped_column(ForeignKey("notify_events.id", ondelete="CASCADE"),
                                          primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    digest_id: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        Index("ix_notify_deliveries_waiting", "user_id",
              sqlite_where=text("digest_id IS NULL"),
              postgresql_where=text("digest_id IS NULL")),
    )


class NotifyDigest(Base):
    """One message to send: a digest of changes or a security notice to a user (by
    email), or one webhook POST. Sent once: a sender claims it (claimed_until) before
    sending, marks it sent after the server accepted it, and retries a failure with
    a growing delay until it has failed for a day (state failed)."""
    __tablename__ = "notify_digests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))     # changes | security | webhook
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                index=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # security: what happened (JSON); webhook: the body to POST
    payload: Mapped[str | None] = mapped_column(Text)
    lines: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed|skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=_now)
    claimed_until: Mapped[float] = mapped_column(Float, default=0.0)
    failing_since: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    reply: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float, default=_now)
    sent_at: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (Index("ix_notify_digests_due", "state", "next_attempt_at"),)
