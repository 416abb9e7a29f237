"""Metadata database: models, engines, migrations."""
from strongroom.appliance.db.engine import Database, default_url
from strongroom.appliance.db.migrate import upgrade

__all__ = ["Database", "default_url", "upgrade"]
