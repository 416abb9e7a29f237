"""`strongroom init` and `strongroom serve`."""
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from strongroom.appliance.cli.options import (F, data_dir_option, emit, passphrase_asker,
                                              chosen_passphrase_file)
from strongroom.config import SCHEMA

if TYPE_CHECKING:    # initialize imports cryptography: only `init` loads it
    from strongroom.appliance.initialize import Initialized

    class InitReport(Initialized):
        data_dir: str
        restart_needed: bool


def _server_option(name: str, **kwargs: Any) -> Callable[[F], F]:
    """`--NAME` for [server] NAME, its default and help taken from the schema."""
    option = SCHEMA["server"][name]
    return click.option(f"--{name.replace('_', '-')}", default=option.default,
                        help=option.help, **kwargs)


KEY_OUTSIDE = "/etc/strongroom/master.key"
passphrase_file_option = click.option(
    "--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
    help="File whose first line is the master key's passphrase ([keys] master_key_source "
         "= passphrase); else asked on a terminal.")


@click.command(epilog="""\b
Examples:
  strongroom init --data-dir /srv/strongroom --host 0.0.0.0
  strongroom init --key-outside                       # key in /etc/strongroom/master.key
  strongroom init --key-source passphrase             # asks the passphrase twice""")
@data_dir_option
@_server_option("host", show_default=True)
@_server_option("webdav_port", type=int, show_default=True)
@_server_option("sftp_port", type=int, show_default=True)
@_server_option("public_name")
@click.option("--key-outside", metavar="[PATH]", is_flag=False, flag_value=KEY_OUTSIDE,
              default=None, type=click.Path(dir_okay=False, path_type=Path),
              help=f"Make the master key in PATH (default {KEY_OUTSIDE}), off the data "
                   "disk, and name it in [keys] master_key_source. A new data directory only.")
@click.option("--key-source", type=click.Choice(["file", "passphrase"]), default="file",
              show_default=True,
              help="passphrase: seal the master key by a passphrase (master.key.sealed); "
                   "the daemon then starts locked until 'strongroom unlock'.")
@passphrase_file_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def init(ctx: click.Context, data_dir: Path, host: str, webdav_port: int, sftp_port: int,
         public_name: str, key_outside: Path | None, key_source: str,
         passphrase_file: Path | None, as_json: bool) -> None:
    """Create the data directory: config, master key, SSH host keys, TLS cert, database.

    Safe to run again: keys, certificates and data are never overwritten; the options
    given on the command line are written into the existing config (a self-signed
    certificate made by init is made again for a new host or public name).
    """
    from strongroom.appliance.initialize import initialize
    from strongroom.appliance.runlock import holder
    settings: dict[str, dict[str, object]] = {
        "server": {"host": host, "webdav_port": webdav_port, "sftp_port": sftp_port,
                   "public_name": public_name}}
    given = tuple(name for name in settings["server"]
                  if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE)
    source = _key_source(key_outside, key_source)
    if source:
        settings["keys"] = {"master_key_source": source}
    ask = passphrase_asker(passphrase_file, confirm=True) if key_source == "passphrase" \
        else None
    made = initialize(data_dir, settings, given, ask)
    running = holder(data_dir)
    out: "InitReport" = {
        **made, "data_dir": str(data_dir.resolve()),
        "restart_needed": bool(running and (made["changed"] or made["certificate"]))}
    emit(out, as_json, _init_lines)


def _key_source(key_outside: Path | None, key_source: str) -> str:
    """[keys] master_key_source for init's options ("": the default file)."""
    from strongroom.appliance.errors import BadRequest
    if key_outside is not None and key_source == "passphrase":
        raise BadRequest("--key-outside and --key-source passphrase exclude each other")
    if key_outside is not None:
        return f"file:{key_outside.expanduser().resolve()}"
    return "passphrase" if key_source == "passphrase" else ""


def _init_lines(d: "InitReport") -> list[str]:
    lines = [f"created {p}" for p in d["created"]]
    lines += [f"set {name} = {new!r} (was {old!r})" for name, (old, new) in d["changed"].items()]
    if d["certificate"]:
        lines.append(d["certificate"])
    if d["restart_needed"]:
        lines.append("the daemon serving it runs with the old settings until it is restarted")
    return lines + [f"data directory ready: {d['data_dir']}"]


@click.command(epilog="Example: strongroom serve --data-dir /srv/strongroom")
@data_dir_option
@passphrase_file_option
def serve(data_dir: Path, passphrase_file: Path | None) -> None:
    """Run WebDAV (HTTPS) and SFTP in the foreground until SIGTERM or Ctrl-C.

    With a master key sealed by a passphrase and no --passphrase-file (nor
    $STRONGROOM_PASSPHRASE_FILE), it starts locked: it serves nothing until
    'strongroom unlock' gives the passphrase.
    """
    from strongroom.appliance.daemon import run
    run(data_dir, passphrase_file=chosen_passphrase_file(passphrase_file))
