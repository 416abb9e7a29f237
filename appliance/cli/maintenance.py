"""`strongroom maintenance run`: retention, trash expiry, the history budget and the
removal of unreferenced blobs, once (the daemon runs it every [retention] interval)."""
from pathlib import Path

import click

from strongroom.appliance.cli.options import (Json, data_dir_option, emit, human_size,
                                              json_option, open_app)
from strongroom.appliance.cli.progress import Progress


@click.group()
def maintenance() -> None:
    """Retention, trash expiry and unreferenced blobs."""


@maintenance.command("run", epilog="Examples: strongroom maintenance run --dry-run\n\n"
                                   "strongroom maintenance run --json")
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@click.option("--now", type=float, hidden=True,
              help="Decide as if it were this time (seconds since the epoch; for tests).")
@data_dir_option
@json_option
def run(dry_run: bool, now: float | None, data_dir: Path, as_json: bool) -> None:
    """Remove, for every client and library, the versions retention thins out, the
    trash items older than trash_days and, over a history_quota, the oldest history;
    then the blobs no version names. Prints a line per client as it is done (--json:
    a list, one object per client and a last one, client null, for unreferenced
    blobs). Every removal is audited. Refused while another process runs it."""
    admin = open_app(data_dir).admin()
    each = None if as_json else (lambda r: click.echo(_line(r)))
    with Progress("maintenance", unit="items") as meter:
        results = admin.maintenance(dry_run=dry_run, now=now, meter=meter, each=each)
    if as_json:
        emit(results, True, lambda rs: [])


def _line(r: Json) -> str:
    verb = "would remove" if r["dry_run"] else "removed"
    if r["client"] is None:
        return f"unreferenced blobs: {verb} {r['blobs']}"
    text = (f"{r['client']}: {verb} {r['versions']} versions, {r['trash_items']} trash items, "
            f"{r['blobs']} blobs, {human_size(r['bytes'])}")
    if "error" in r:
        text += f" (skipped: {r['error']})"
    return text
