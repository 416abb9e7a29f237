"""Keyed drive-session lookup, plain lock roots, a keyed audit chain

- drive_sessions.lookup: an HMAC (keyed from the master key) of the credential, so
  a login finds its drive session with one indexed query and one argon2 check.
  Existing drive sessions cannot be looked up that way and are ended: their users
  map the drive again with a fresh code.
- dav_locks: lock roots are now plain paths (they were URL-quoted); the few live
  locks are dropped and their clients lock again.
- audit_head.scheme: 'sha256' for a chain of plain digests (every chain so far),
  'hmac' once the appliance has re-chained it under its key (at the first start
  with the key loaded: appliance.service.audit).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM drive_sessions")
    with op.batch_alter_table("drive_sessions") as b:
        b.add_column(sa.Column("lookup", sa.String(64), nullable=True))
        b.create_index("ix_drive_sessions_lookup", ["lookup"])
    op.execute("DELETE FROM dav_locks")
    with op.batch_alter_table("audit_head") as b:
        b.add_column(sa.Column("scheme", sa.String(16), nullable=False,
                               server_default="sha256"))


def downgrade() -> None:
    with op.batch_alter_table("audit_head") as b:
        b.drop_column("scheme")
    with op.batch_alter_table("drive_sessions") as b:
        b.drop_index("ix_drive_sessions_lookup")
        b.drop_column("lookup")
