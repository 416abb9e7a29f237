"""The daemon's log on stderr: readable lines, or one JSON object per line.

[log] format = "json" gives each event as one line a log collector can parse:
`time` (UTC, ISO 8601), `level`, `logger`, `message`, the event's own fields
(those passed as `extra=`: protocol, login, address, outcome, client, path,
version_id, ...) and `exception` (the traceback text) when there is one.
"""
import datetime
import json
import logging
import sys
from typing import Protocol

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {"time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
                 .isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                event[name] = value
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            event["exception"] = record.exc_text
        return json.dumps(event, ensure_ascii=False, default=str)


class LogSettings(Protocol):
    """The [log] section of the configuration."""
    level: str
    format: str


def setup(log_config: LogSettings) -> None:
    """Send every logger's events at [log] level and above to stderr, in [log] format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_config.format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(log_config.level.upper())
