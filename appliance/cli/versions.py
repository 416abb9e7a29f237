"""`strongroom versions ...`"""
import click

from appliance.cli.options import (client_admin_session, data_dir_option, emit, human_size,
                                   iso_time, json_option)


@click.group()
def versions():
    """Earlier versions of files: list and restore."""


@versions.command("list", epilog="Example: strongroom versions list /reports/q3.pdf --client acme")
@click.argument("path")
@click.option("--client", "client_name", required=True, help="The client whose tree PATH is in.")
@data_dir_option
@json_option
def list_(path, client_name, data_dir, as_json):
    """List every version of PATH, oldest first; the current one is marked."""
    session = client_admin_session(data_dir, client_name)
    rows = [{"id": v.id, "size": v.size, "digest": v.digest, "created_at": iso_time(v.created_at),
             "mtime": iso_time(v.mtime), "author": v.author, "current": v.current}
            for v in session.versions(f"/{client_name}/{path.lstrip('/')}")]
    emit(rows, as_json, lambda rs: [f"{'ID':>8} {'SIZE':>10} {'CREATED':25} {'AUTHOR':16}"] +
         [f"{r['id']:>8} {human_size(r['size']):>10} {r['created_at']:25} {r['author'] or '-':16}"
          f"{' (current)' if r['current'] else ''}" for r in rs])


@versions.command("restore",
                  epilog="Example: strongroom versions restore /reports/q3.pdf 42 --client acme")
@click.argument("path")
@click.argument("version_id", type=int)
@click.option("--client", "client_name", required=True, help="The client whose tree PATH is in.")
@data_dir_option
def restore(path, version_id, client_name, data_dir):
    """Make VERSION_ID of PATH current again (as a new version; nothing is lost)."""
    session = client_admin_session(data_dir, client_name)
    session.restore(f"/{client_name}/{path.lstrip('/')}", version_id)
    click.echo(f"restored version {version_id} of {path}")
