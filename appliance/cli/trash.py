"""`strongroom trash ...`: what `@trash` shows a client, for the admin."""
import click

from appliance.cli.options import (client_admin_session, data_dir_option, emit, human_size,
                                   iso_time, json_option)
from appliance.errors import BadRequest
from appliance.session import paths, trash as view


@click.group()
def trash():
    """Deleted files and folders: list and restore."""


def _items(session, path: str):
    """Each deleted item below `path` in the view, also those deleted from a folder
    before the folder was."""
    for entry in session.list(path):
        if entry.deleted_at is not None:
            yield entry
        if entry.is_dir:
            yield from _items(session, entry.path)


def _below_client(path: str) -> str:
    return paths.join(paths.clean(path)[1:])


def _row(entry) -> dict:
    return {"item": _below_client(entry.path), "original": _below_client(entry.origin),
            "deleted_at": iso_time(entry.deleted_at), "folder": entry.is_dir,
            "size": None if entry.is_dir else entry.size}


@trash.command("list", epilog="Example: strongroom trash list --client acme")
@click.option("--client", "client_name", required=True, help="The client whose trash to list.")
@data_dir_option
@json_option
def list_(client_name, data_dir, as_json):
    """List every deleted file and folder of a client, oldest first (to the second),
    with the path it had; ITEM is what `trash restore` takes."""
    session = client_admin_session(data_dir, client_name)
    items = sorted(_items(session, f"/{client_name}/{view.VIEW}"),
                   key=lambda e: (int(e.deleted_at), e.node_id))
    rows = [_row(e) for e in items]
    emit(rows, as_json, lambda rs: [f"{'DELETED':25} {'SIZE':>10}  ITEM"] +
         [f"{r['deleted_at']:25} {'folder' if r['folder'] else human_size(r['size']):>10}  "
          f"{r['item']}" for r in rs])


@trash.command("restore", epilog="Example: strongroom trash restore "
                                 "'/@trash/reports/2026-12-01 13-40-02 d42 q3.pdf' --client acme")
@click.argument("item")
@click.option("--client", "client_name", required=True, help="The client whose trash ITEM is in.")
@click.option("--to", "dest", help="Where to put it (default: the path it had).")
@click.option("--overwrite", is_flag=True,
              help="Replace what is there now (a file keeps it as an earlier version).")
@data_dir_option
def restore(item, client_name, dest, overwrite, data_dir):
    """Copy a deleted file or folder back into the tree."""
    rel = paths.clean(item)
    not_an_item = BadRequest(f"not an item of the trash: {item} (see `strongroom trash list`)")
    if rel[:1] != (view.VIEW,) or len(rel) < 2:
        raise not_an_item
    session = client_admin_session(data_dir, client_name)
    entry = session.stat(f"/{client_name}{paths.join(rel)}")
    if entry.deleted_at is None:
        raise not_an_item
    dest = dest or _below_client(entry.origin)
    session.copy(entry.path, f"/{client_name}/{dest.lstrip('/')}", overwrite=overwrite)
    click.echo(f"restored {item} to {dest}")
