"""Sparse versions and keyed digests

versions.sha256 becomes versions.digest (wider: it now carries its scheme, e.g.
"b3:<hex>"), and versions gets `holes`, the provider's list of chunks that were
never written (NULL: none, which is every existing row). Existing digests stay
plain SHA-256 here, since a migration has no keys: the first App start after it
rewrites them as keyed digests (appliance.db.rekey), helped by a partial index
that holds exactly the rows still to convert.

Downgrading drops the hole lists, so sparse versions written since no longer
read (their hole chunks are not stored); the keyed digests stay keyed, and the
column stays wide enough for them.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LEGACY = sa.text("digest NOT LIKE '%:%'")


def upgrade() -> None:
    with op.batch_alter_table("versions") as b:
        b.alter_column("sha256", new_column_name="digest", existing_type=sa.String(64),
                       type_=sa.String(80), existing_nullable=False)
        b.add_column(sa.Column("holes", sa.Text(), nullable=True))
    op.create_index("ix_versions_legacy_digest", "versions", ["id"],
                    sqlite_where=LEGACY, postgresql_where=LEGACY)


def downgrade() -> None:
    op.drop_index("ix_versions_legacy_digest", table_name="versions")
    with op.batch_alter_table("versions") as b:
        b.drop_column("holes")
        b.alter_column("digest", new_column_name="sha256", existing_type=sa.String(80),
                       existing_nullable=False)
