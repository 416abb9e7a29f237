"""`strongroom status`"""
from collections.abc import Iterator
from pathlib import Path

import click

from strongroom.appliance.cli.options import (Json, data_dir_option, emit, json_option)

CHECKS = ("daemon", "webdav", "sftp", "database", "master_key", "disk", "staging")
MARK = {True: "ok", False: "ATTENTION", None: "-"}


@click.command(epilog="Examples: strongroom status ; strongroom status --json | jq .disk")
@data_dir_option
@json_option
def status(data_dir: Path, as_json: bool) -> None:
    """Daemon, ports, database, master key, disk and staging, one line each.

    Reads only (the database read-only; no audit event). Exits 1 when a line needs
    attention: daemon not running, a port not answering, database unreachable or not
    migrated, master key unreadable or wrong, free space below [storage] reserve.
    """
    from strongroom.appliance.health import status as gather
    report = gather(data_dir)
    emit(report, as_json, _human)
    raise SystemExit(0 if report["ok"] else 1)


def _human(report: Json) -> Iterator[str]:
    for name in CHECKS:
        check = report[name]
        yield f"{name.replace('_', ' '):<11} {MARK[check['ok']]:<9} {check['summary']}"
    if report["attention"]:
        yield f"needs attention: {', '.join(n.replace('_', ' ') for n in report['attention'])}"
    else:
        yield "all well"
