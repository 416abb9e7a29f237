"""alembic environment: uses the engine handed over in config.attributes."""
from alembic import context

from strongroom.appliance.db.models import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    # Batch mode rebuilds a table on SQLite (copy, drop, rename): with foreign keys on,
    # dropping the old `clients` deletes every row that refers to it (ON DELETE CASCADE).
    # Off while migrating; SQLite ignores the pragma inside a transaction, hence the
    # driver's connection, before the migration's transaction and after its end.
    pragma = (connection.connection.dbapi_connection.execute
              if connection.dialect.name == "sqlite" else None)
    if pragma:
        pragma("PRAGMA foreign_keys=OFF")
    try:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if pragma:
            connection.rollback()           # nothing to undo after the commit
            pragma("PRAGMA foreign_keys=ON")
