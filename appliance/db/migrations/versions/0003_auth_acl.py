"""Second factor, app passwords, drive sessions, login throttling, folder ACLs,
shared libraries

Existing clients get the grant `client add` now makes (their users: read, write,
delete on the whole tree) and existing staff keep seeing every existing client
(read, write, delete, manage), so an upgrade changes nobody's access.

Revision ID: 0003
Revises: 0002
"""
import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("clients") as b:
        b.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="client"))
        b.add_column(sa.Column("shared_with_all", sa.Boolean(), nullable=False,
                               server_default=sa.false()))
    op.create_table(
        "library_members",
        sa.Column("library_id", sa.Integer(), sa.ForeignKey("clients.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id", ondelete="CASCADE"),
                  primary_key=True))
    op.create_table(
        "app_passwords",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("last_used_at", sa.Float(), nullable=True))
    op.create_index("uq_app_passwords_label", "app_passwords", ["user_id", "label"], unique=True)
    op.create_table(
        "drive_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False))
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False))
    grants = op.create_table(
        "acl_grants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("subject_kind", sa.String(8), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("rights", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False))
    op.create_index("uq_acl_grants", "acl_grants",
                    ["client_id", "path", "subject_kind", "subject_id"], unique=True)
    op.create_index("ix_acl_grants_subject", "acl_grants", ["subject_kind", "subject_id"])
    _keep_existing_access(grants)


def _keep_existing_access(grants: sa.Table) -> None:
    conn = op.get_bind()
    now = time.time()
    clients = [r[0] for r in conn.execute(sa.text("SELECT id FROM clients"))]
    staff = [r[0] for r in conn.execute(sa.text("SELECT id FROM users WHERE role = 'staff'"))]
    rows = [dict(client_id=c, path="/", subject_kind="client", subject_id=c, rights="rwd",
                 created_at=now) for c in clients]
    rows += [dict(client_id=c, path="/", subject_kind="user", subject_id=u, rights="rwdm",
                  created_at=now) for c in clients for u in staff]
    if rows:
        op.bulk_insert(grants, rows)


def downgrade() -> None:
    for table in ("acl_grants", "login_throttle", "drive_sessions", "app_passwords",
                  "library_members"):
        op.drop_table(table)
    with op.batch_alter_table("clients") as b:
        b.drop_column("shared_with_all")
        b.drop_column("kind")
    with op.batch_alter_table("users") as b:
        b.drop_column("totp_last_step")
