"""Metadata database: models, engines, migrations."""
from appliance.db.engine import Database, default_url
from appliance.db.migrate import upgrade

__all__ = ["Database", "default_url", "upgrade"]
