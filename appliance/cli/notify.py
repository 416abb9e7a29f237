"""`strongroom notify ...`: email notifications, as the admin sees and tests them."""
from collections.abc import Iterator
from pathlib import Path

import click

from strongroom.appliance.cli.options import (Json, data_dir_option, emit, iso_time,
                                              json_option, open_app)


@click.group()
def notify() -> None:
    """Email notifications: test the [mail] settings, see the queue."""


def _human_test(r: Json) -> Iterator[str]:
    yield f"sent to {r['to']} through {r['server']} ({r['security']})"
    yield f"the mail server answered: {r['answer']}"


@notify.command("test", epilog="Examples: strongroom notify test alice\n\n"
                               "strongroom notify test alice --json")
@click.argument("login")
@data_dir_option
@json_option
def test(login: str, data_dir: Path, as_json: bool) -> None:
    """Send one short test email to LOGIN's address now, through the [mail] settings,
    and print the mail server's answer (or why it did not take the message)."""
    emit(open_app(data_dir).admin().notify_test(login), as_json, _human_test)


def _human_status(r: Json) -> Iterator[str]:
    yield f"mail: {r['mail'] or 'off ([mail] host is empty): nothing is mailed'}"
    yield f"webhook: {r['webhook'] or 'none'}"
    yield (f"waiting: {r['events_waiting']} changes for their tree to be quiet "
           f"({r['quiet_period']:g} s), {r['deliveries_waiting']} for a user's next digest")
    yield f"pending messages: {r['pending_count']}; failed: {r['failed_count']}"
    yield f"last sent: {iso_time(r['last_sent_at'])}"
    for state in ("pending", "failed"):
        for m in r[state]:
            error = f": {m['last_error']}" if m["last_error"] else ""
            yield (f"  {state} #{m['id']} {m['kind']} to {m['to']}, lines: {m['lines']}, "
                   f"attempts: {m['attempts']}{error}")


@notify.command("status", epilog="Examples: strongroom notify status\n\n"
                                 "strongroom notify status --json")
@data_dir_option
@json_option
def status(data_dir: Path, as_json: bool) -> None:
    """The notification queue: changes waiting for their tree to be quiet or for a user's
    next digest, messages pending (with their last error) and failed, the last sent."""
    emit(open_app(data_dir).admin().notify_status(), as_json, _human_status)
