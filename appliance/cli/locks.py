"""`strongroom locks ...`: WebDAV locks, listed and cleared by the admin."""
from collections.abc import Iterator
from pathlib import Path

import click

from strongroom.appliance.cli.options import (Json, data_dir_option, emit, iso_time,
                                              json_option, open_app)


def _human(rows: list[Json]) -> Iterator[str]:
    yield f"{'EXPIRES':25} {'USER':16} {'SCOPE':9} {'DEPTH':8} PATH"
    for r in rows:
        yield (f"{iso_time(r['expires_at']):25} {r['user']:16} {r['scope']:9} {r['depth']:8} "
               f"{r['path']}")


@click.group()
def locks() -> None:
    """WebDAV locks (taken by Office, Finder and other clients while a file is open)."""


@locks.command("list", epilog="Examples: strongroom locks list\n\n"
                              "strongroom locks list /acme --user alice --json")
@click.argument("path", required=False)
@click.option("--user", "login", help="Only the locks of this login.")
@data_dir_option
@json_option
def list_(path: str | None, login: str | None, data_dir: Path, as_json: bool) -> None:
    """List live locks (at or below PATH, /CLIENT/...), soonest to expire first."""
    emit(open_app(data_dir).admin().list_locks(path, login), as_json, _human)


@locks.command("clear", epilog="Examples: strongroom locks clear /acme/reports/q3.xlsx\n\n"
                               "strongroom locks clear --user alice\n\n"
                               "strongroom locks clear --token opaquelocktoken:...")
@click.argument("path", required=False)
@click.option("--user", "login", help="Every lock of this login.")
@click.option("--token", help="The one lock with this token.")
@data_dir_option
@json_option
def clear(path: str | None, login: str | None, token: str | None, data_dir: Path,
          as_json: bool) -> None:
    """Remove locks at or below PATH (/CLIENT/...), of one user, or by token; the
    clients holding them see their next write refused until they lock again."""
    out = open_app(data_dir).admin().clear_locks(token=token, path=path, login=login)
    emit(out, as_json, lambda o: [f"cleared {o['cleared']} lock(s)"] +
         [f"  {r['path']} (held by {r['user']})" for r in o["locks"]])
