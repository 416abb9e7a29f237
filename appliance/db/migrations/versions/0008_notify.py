"""Notifications: the outbox of changes, who is to hear of them, and the messages

notify_events: each change to a file or folder, written in the transaction that
commits it; notify_deliveries: an event a user is to hear of, until that user's next
digest; notify_digests: each message (a digest of changes, a security notice, a
webhook POST) with its sending state. users gets notify_frequency (NULL: the
default of the user's role).

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_UNROUTED = sa.text("routed_at IS NULL")
_WAITING = sa.text("digest_id IS NULL")


def upgrade() -> None:
    # plain ADD COLUMN, never batch mode (see 0006: a rebuilt `users` would cascade)
    op.add_column("users", sa.Column("notify_frequency", sa.String(16), nullable=True))
    op.create_table(
        "notify_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("is_dir", sa.Boolean(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("old_path", sa.Text(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("routed_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_notify_events_unrouted", "notify_events", ["client_id", "id"],
                    sqlite_where=_UNROUTED, postgresql_where=_UNROUTED)
    op.create_index("ix_notify_events_ts", "notify_events", ["ts"])
    op.create_table(
        "notify_deliveries",
        sa.Column("event_id", sa.Integer(),
                  sa.ForeignKey("notify_events.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_notify_deliveries_waiting", "notify_deliveries", ["user_id"],
                    sqlite_where=_WAITING, postgresql_where=_WAITING)
    _create_digests()


def _create_digests() -> None:
    op.create_table(
        "notify_digests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("message_id", sa.String(200), nullable=False, unique=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("claimed_until", sa.Float(), nullable=False),
        sa.Column("failing_since", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_notify_digests_user_id", "notify_digests", ["user_id"])
    op.create_index("ix_notify_digests_due", "notify_digests", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notify_digests_due", "notify_digests")
    op.drop_index("ix_notify_digests_user_id", "notify_digests")
    op.drop_table("notify_digests")
    op.drop_index("ix_notify_deliveries_waiting", "notify_deliveries")
    op.drop_table("notify_deliveries")
    op.drop_index("ix_notify_events_ts", "notify_events")
    op.drop_index("ix_notify_events_unrouted", "notify_events")
    op.drop_table("notify_events")
    op.drop_column("users", "notify_frequency")
