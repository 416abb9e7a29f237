"""`strongroom notify ...`: email notifications, as the admin sees and tests them."""
from collections.abc import Iterator
from pathlib import Path

import click

from strongroom.appliance.cli.options import Json, data_dir_option, emit, json_option, open_app


@click.group()
def notify() -> None:
    """Email notifications: test the [mail] settings."""


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
