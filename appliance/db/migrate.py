"""Run the alembic migrations shipped inside the package."""
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from strongroom.appliance.db.engine import safe_url
from strongroom.appliance.errors import Unavailable

if TYPE_CHECKING:
    from strongroom.appliance.db.engine import Database

HERE = Path(__file__).parent


def _config(engine: Engine | None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(db: "Database") -> None:
    """Bring the schema of `db` (a Database) to the newest revision. A database
    that cannot be reached raises Unavailable with the driver's reason."""
    try:
        command.upgrade(_config(db.engine), "head")
    except (OperationalError, InterfaceError) as e:
        reason = " ".join(str(e.orig or e).split())
        raise Unavailable(f"cannot use the database {safe_url(db.url)}: {reason}") from None


def heads() -> set[str]:
    """The newest revisions this version of Strongroom ships."""
    return set(ScriptDirectory.from_config(_config(None)).get_heads())


def current(connection: Connection) -> set[str]:
    """The revisions the database on `connection` is at (empty: not initialised)."""
    return set(MigrationContext.configure(connection).get_current_heads())


def revision(db: "Database", message: str) -> None:
    """Developer helper: autogenerate a new revision from the models."""
    command.revision(_config(db.engine), message=message, autogenerate=True)
