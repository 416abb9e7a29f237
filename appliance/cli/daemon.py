"""`strongroom init` and `strongroom serve`."""
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from strongroom.appliance.cli.options import F, data_dir_option, emit
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


@click.command(epilog="Example: strongroom init --data-dir /srv/strongroom --host 0.0.0.0")
@data_dir_option
@_server_option("host", show_default=True)
@_server_option("webdav_port", type=int, show_default=True)
@_server_option("sftp_port", type=int, show_default=True)
@_server_option("public_name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def init(ctx: click.Context, data_dir: Path, host: str, webdav_port: int, sftp_port: int,
         public_name: str, as_json: bool) -> None:
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
    made = initialize(data_dir, settings, given)
    running = holder(data_dir)
    out: "InitReport" = {
        **made, "data_dir": str(data_dir.resolve()),
        "restart_needed": bool(running and (made["changed"] or made["certificate"]))}
    emit(out, as_json, _init_lines)


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
def serve(data_dir: Path) -> None:
    """Run WebDAV (HTTPS) and SFTP in the foreground until SIGTERM or Ctrl-C."""
    from strongroom.appliance.daemon import run
    run(data_dir)
