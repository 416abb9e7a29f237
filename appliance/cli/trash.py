"""`strongroom trash ...`: what `@trash` shows a client, for the admin."""
from collections.abc import Iterator
from pathlib import Path

import click

from strongroom.appliance.cli.options import (Json, data_dir_option, emit, human_size, iso_time,
                                              json_option, open_app, tree_session)
from strongroom.appliance.service import Session, paths, trash as view
from strongroom.appliance.service.entry import Entry


@click.group()
def trash() -> None:
    """Deleted files and folders: list and restore."""


def _items(session: Session, path: str) -> Iterator[Entry]:
    """Each deleted item below `path` in the view, also those deleted from a folder
    before the folder was."""
    for entry in session.list(path):
        if entry.deleted_at is not None:
            yield entry
        if entry.is_dir:
            yield from _items(session, entry.path)


def _row(entry: Entry) -> Json:
    return {"id": f"d{entry.node_id}", "item": entry.path, "original": entry.origin,
            "deleted_at": iso_time(entry.deleted_at), "folder": entry.is_dir,
            "size": None if entry.is_dir else entry.size}


@trash.command("list", epilog="Examples: strongroom trash list /acme\n\n"
                              "strongroom trash list /acme/reports --json")
@click.argument("path", required=False)
@data_dir_option
@json_option
def list_(path: str | None, data_dir: Path, as_json: bool) -> None:
    """List deleted files and folders, oldest first (to the second), with the path
    each had: every client's and library's, or those that were at or below PATH
    (/CLIENT/... or /LIBRARY/...). `trash restore` takes an item's ID (or its ITEM,
    its path in the trash, shown with --json)."""
    session = tree_session(data_dir, *([path] if path else []))
    below = paths.clean(path) if path else ()
    trees = below[:1] or [tree.name for tree in session.list("/")]
    items = [e for tree in trees for e in _items(session, paths.join((tree, view.VIEW)))
             if paths.clean(e.origin)[:len(below)] == below]
    rows = [_row(e) for e in sorted(items, key=lambda e: (int(e.deleted_at or 0), e.node_id))]
    emit(rows, as_json, lambda rs: [f"{'ID':>8}  {'DELETED':25} {'SIZE':>10}  ORIGINAL"] +
         [f"{r['id']:>8}  {r['deleted_at']:25} "
          f"{'folder' if r['folder'] else human_size(r['size']):>10}  {r['original']}"
          for r in rs])


@trash.command("restore", epilog="Examples: strongroom trash restore d42\n\n"
                                 "strongroom trash restore d42 --to /acme/reports/q3-old.pdf\n\n"
                                 "strongroom trash restore "
                                 "'/acme/@trash/reports/2026-12-01 13-40-02 d42 q3.pdf'")
@click.argument("item")
@click.option("--to", "dest", help="Where to put it, a full path such as /acme/reports/q3.pdf "
                                   "(default: the path it had).")
@click.option("--overwrite", is_flag=True,
              help="Replace what is there now (a file keeps it as an earlier version).")
@data_dir_option
def restore(item: str, dest: str | None, overwrite: bool, data_dir: Path) -> None:
    """Copy a deleted file or folder back into the tree. ITEM is its ID (d42) or its
    path in the trash, as `strongroom trash list` shows them."""
    to = open_app(data_dir).admin().restore_trash(item, dest, overwrite=overwrite)
    click.echo(f"restored {item} to {to}")
