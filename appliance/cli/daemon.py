"""`strongroom init` and `strongroom serve`."""
import click

from appliance.cli.options import data_dir_option, emit


@click.command(epilog="Example: strongroom init --data-dir /srv/strongroom --host 0.0.0.0")
@data_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--webdav-port", type=int, default=8443, show_default=True)
@click.option("--sftp-port", type=int, default=2222, show_default=True)
@click.option("--public-name", default="", help="Host name clients use (added to the TLS cert).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def init(data_dir, host, webdav_port, sftp_port, public_name, as_json):
    """Create the data directory: config, master key, SSH host keys, TLS cert, database.

    Safe to run again: nothing that exists is overwritten.
    """
    from appliance.initialize import initialize
    settings = {"server": {"host": host, "webdav_port": webdav_port, "sftp_port": sftp_port,
                           "public_name": public_name}}
    made = initialize(data_dir, settings)
    emit({"data_dir": str(data_dir.resolve()), "created": made}, as_json,
         lambda d: [f"created {p}" for p in d["created"]] +
         [f"data directory ready: {d['data_dir']}"])


@click.command(epilog="Example: strongroom serve --data-dir /srv/strongroom")
@data_dir_option
def serve(data_dir):
    """Run WebDAV (HTTPS) and SFTP in the foreground until SIGTERM or Ctrl-C."""
    from appliance.daemon import run
    run(data_dir)
