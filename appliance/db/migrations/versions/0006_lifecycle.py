"""Client and user lifecycle: display names, disabled clients, user languages, and
names unique without regard to case

clients gets display_name and disabled, users gets display_name and language,
and two unique indexes on lower(name) and lower(login): 'Acme' next to 'acme' is
refused (clients and libraries share the clients table, so one namespace).

Existing names that differ only in case cannot be indexed; rather than rename
anything behind the admin's back, the upgrade stops with a message listing them
and the statements that would rename all but the first, and changes nothing.

Expression indexes are not reflected on SQLite: a later migration that makes
batch_alter_table rebuild clients or users there must create these two again
(and must not rebuild them with foreign keys on: see below).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

from strongroom.appliance.errors import Conflict

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Plain ALTER TABLE ADD/DROP COLUMN, never batch mode: on SQLite a batch rebuilds
# the table, and dropping `clients` or `users` with foreign keys on would cascade
# to every row that refers to them.

def upgrade() -> None:
    _refuse_case_duplicates("clients", "name", "client or library names")
    _refuse_case_duplicates("users", "login", "user logins")
    op.add_column("clients", sa.Column("display_name", sa.String(200), nullable=True))
    op.add_column("clients", sa.Column("disabled", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column("users", sa.Column("display_name", sa.String(200), nullable=True))
    op.add_column("users", sa.Column("language", sa.String(8), nullable=True))
    op.create_index("uq_clients_name_ci", "clients", [sa.text("lower(name)")], unique=True)
    op.create_index("uq_users_login_ci", "users", [sa.text("lower(login)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_login_ci", table_name="users")
    op.drop_index("uq_clients_name_ci", table_name="clients")
    for table, column in (("users", "language"), ("users", "display_name"),
                          ("clients", "disabled"), ("clients", "display_name")):
        op.drop_column(table, column)


def _refuse_case_duplicates(table: str, column: str, what: str) -> None:
    rows = op.get_bind().execute(sa.text(
        f"SELECT {column} FROM {table} WHERE lower({column}) IN "
        f"(SELECT lower({column}) FROM {table} GROUP BY lower({column}) HAVING count(*) > 1) "
        f"ORDER BY lower({column}), id")).scalars().all()
    if not rows:
        return
    seen, renames = set(), []
    for name in rows:
        if name.lower() in seen:
            renames.append(f"UPDATE {table} SET {column} = '{name}-2' "
                           f"WHERE {column} = '{name}';")
        seen.add(name.lower())
    raise Conflict(f"cannot upgrade the database: {what} must be unique without regard to "
                   f"case, and these are not: {', '.join(rows)}; rename all but one of each "
                   f"(e.g. {' '.join(renames)}) and start again")
