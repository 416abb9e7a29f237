"""`strongroom user notify LOGIN --frequency ...` (a command of the `user` group, kept
apart from appliance/cli/users.py)."""
from pathlib import Path

import click

from strongroom.appliance.cli.options import data_dir_option, emit, json_option, open_app
from strongroom.appliance.notify.outbox import FREQUENCIES


@click.command("notify", epilog="Examples: strongroom user notify alice --frequency daily\n\n"
                                "strongroom user notify sam --frequency off --json")
@click.argument("login")
@click.option("--frequency", required=True, type=click.Choice(FREQUENCIES),
              help="off; immediate (once the tree has been quiet for [notify] quiet_period); "
                   "or at most one digest an hour, a day or a week. Default: immediate for "
                   "client users, daily for staff.")
@data_dir_option
@json_option
def notify(login: str, frequency: str, data_dir: Path, as_json: bool) -> None:
    """How often LOGIN gets an email digest of the documents that changed."""
    out = open_app(data_dir).admin().set_notify_frequency(login, frequency)
    emit(out, as_json, lambda r: [f"{r['login']} hears of changes: {r['notify']}"])
