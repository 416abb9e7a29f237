"""Run the alembic migrations shipped inside the package."""
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

HERE = Path(__file__).parent


def _config(engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(db) -> None:
    """Bring the schema of `db` (a Database) to the newest revision."""
    command.upgrade(_config(db.engine), "head")


def revision(db, message: str) -> None:
    """Developer helper: autogenerate a new revision from the models."""
    command.revision(_config(db.engine), message=message, autogenerate=True)
