"""Key ids: every wrapped key names the key that wraps it, for rotation in batches

clients gets key_id (a random name of the client key, given here to each existing
client), master_key_id (the master key wrapping its keys: NULL until the next start
of App, which alone holds the key and so can tell its id), next_wrapped_key and
next_key_id (a client rotation in progress) and wrapped_digest_key (set by the
first rotation of the client). versions gets client_key_id, the client key wrapping
its data key, indexed (a rotation finds the data keys left by it). appliance_keys
holds the master key's id, the next master key during a rotation and the base of the
derived keys (appliance.service.keys_store fills it at the first start).

Revision ID: 0010
Revises: 0009
"""
import secrets
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN, never batch mode (see 0006: a rebuilt table would cascade)
    _add_not_null("clients", "key_id", _client_key_ids)
    for name, kind in (("master_key_id", sa.String(16)), ("next_wrapped_key", sa.LargeBinary()),
                       ("next_key_id", sa.String(16)),
                       ("wrapped_digest_key", sa.LargeBinary())):
        op.add_column("clients", sa.Column(name, kind, nullable=True))
    _add_not_null("versions", "client_key_id", lambda: op.execute(
        "UPDATE versions SET client_key_id = (SELECT c.key_id FROM nodes n "
        "JOIN clients c ON c.id = n.client_id WHERE n.id = versions.node_id)"))
    op.create_index("ix_versions_client_key_id", "versions", ["client_key_id"])
    op.create_table(
        "appliance_keys",
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("master_key_id", sa.String(16), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def _client_key_ids() -> None:
    bind = op.get_bind()
    for (client_id,) in bind.execute(sa.text("SELECT id FROM clients")).all():
        bind.execute(sa.text("UPDATE clients SET key_id = :k WHERE id = :id"),
                     {"k": secrets.token_hex(8), "id": client_id})


def _add_not_null(table: str, column: str, fill: Callable[[], None]) -> None:
    """A NOT NULL key id column. SQLite adds one only with a default (and cannot drop
    it without rebuilding the table): '' there, which no row keeps; PostgreSQL adds it
    nullable, fills it, then makes it NOT NULL."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    op.add_column(table, sa.Column(column, sa.String(16), nullable=not sqlite,
                                   server_default="" if sqlite else None))
    fill()
    if not sqlite:
        op.alter_column(table, column, nullable=False)


def downgrade() -> None:
    op.drop_table("appliance_keys")
    op.drop_index("ix_versions_client_key_id", table_name="versions")
    op.drop_column("versions", "client_key_id")
    for name in ("wrapped_digest_key", "next_key_id", "next_wrapped_key", "master_key_id",
                 "key_id"):
        op.drop_column("clients", name)
