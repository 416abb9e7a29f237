"""Retention: pinned versions, a client's own retention settings, and the lease that
lets one maintenance run at a time

versions gets `pinned` (a pinned version is never removed by retention, trash expiry
or the history budget); clients gets `retention` (NULL: the [retention] defaults;
else a JSON object of the options the client overrides, e.g. {"keep_all": 604800});
maintenance_leases holds one row per periodic job, naming the process that runs it
and until when (so several processes or nodes run it one at a time).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN, never batch mode (see 0006: a rebuilt table would cascade)
    op.add_column("versions", sa.Column("pinned", sa.Boolean(), nullable=False,
                                        server_default=sa.text("false")))
    op.add_column("clients", sa.Column("retention", sa.Text(), nullable=True))
    op.create_table(
        "maintenance_leases",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("maintenance_leases")
    op.drop_column("clients", "retention")
    op.drop_column("versions", "pinned")
