"""`strongroom audit ...`: read and check the hash-chained audit trail."""
import datetime
from pathlib import Path
import time

import click

from strongroom.appliance.cli.options import (converted, data_dir_option, emit, fail, iso_time,
                                   json_option, open_app)
from strongroom.config.converters import duration_with_unit


def _since(value: str) -> float:
    """A start time: a duration back from now ('24h', '7d') or an ISO date or time (UTC
    unless it names a zone)."""
    try:
        seconds: float = duration_with_unit(value)
        return time.time() - seconds
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a duration with a unit, such as '24h' or '7d', or a date "
                         f"such as 2026-12-01 or 2026-12-01T09:30, got {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


@click.group()
def audit() -> None:
    """The audit trail: every login, read, write, rename, delete and admin change."""


@audit.command("list", epilog="Examples: strongroom audit list --client acme --since 7d\n\n"
                              "strongroom audit list --failed --since 24h --json")
@click.option("--user", "actor", help="Only what this login did.")
@click.option("--client", help="Only events in this client's tree.")
@click.option("--action", help="Only this action (login, read, write, rename, delete, ...; "
                                "an unknown one is refused with the list).")
@click.option("--failed", is_flag=True, help="Only refused or failed events.")
@click.option("--since", callback=converted(_since), help="From then on: 24h, 7d or 2026-12-01.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Show the newest this many.")
@click.option("--all", "everything", is_flag=True, help="No limit (an export with --json).")
@data_dir_option
@json_option
def list_(actor: str | None, client: str | None, action: str | None, failed: bool,
          since: float | None, limit: int, everything: bool, data_dir: Path,
          as_json: bool) -> None:
    """List events, oldest first; with --json every field, hashes included."""
    events = open_app(data_dir).admin().audit_events(
        actor=actor, client=client, action=action, since=since,
        outcome_not_ok=failed, limit=None if everything else limit)
    for event in events:
        event["time"] = iso_time(event["ts"])
    emit(events, as_json, lambda evs: [
        f"{e['time']:25} {e['actor']:16} {e['protocol']:7} {e['address'] or '-':15} "
        f"{e['action']:14} {e['outcome']:7} {e['path'] or '-'}"
        + (f"  ({e['detail']})" if e["detail"] else "") for e in evs])


@audit.command("verify", epilog="Example: strongroom audit verify")
@data_dir_option
@json_option
def verify(data_dir: Path, as_json: bool) -> None:
    """Check the hash chain from the first event to the last: exit status 1 if a row
    was altered, removed, reordered or the end cut off."""
    count, bad, problem = open_app(data_dir).admin().verify_audit()
    if as_json:
        emit({"ok": bad is None, "events": count, "first_bad_event": bad, "problem": problem},
             True, lambda _: ())   # (no lines: JSON)
    if bad is not None:
        fail(f"the audit trail is broken: {problem} ({count} events before it verify)")
    if not as_json:
        click.echo(f"the audit trail is intact: {count} events verify, up to the anchor")
