"""`strongroom versions ...`"""
from pathlib import Path

import click

from strongroom.appliance.cli.options import (Json, data_dir_option, emit, human_size,
                                              iso_time, json_option, tree_session)


@click.group()
def versions() -> None:
    """Earlier versions of files: list and restore."""


@versions.command("list", epilog="Example: strongroom versions list /acme/reports/q3.pdf")
@click.argument("path")
@data_dir_option
@json_option
def list_(path: str, data_dir: Path, as_json: bool) -> None:
    """List every version of PATH (/CLIENT/... or /LIBRARY/...), oldest first; the
    current one is marked."""
    rows: list[Json] = [
        {"id": v.id, "size": v.size, "digest": v.digest, "created_at": iso_time(v.created_at),
         "mtime": iso_time(v.mtime), "author": v.author, "current": v.current}
        for v in tree_session(data_dir, path).versions(path)]
    emit(rows, as_json, lambda rs: [f"{'ID':>8} {'SIZE':>10} {'CREATED':25} {'AUTHOR':16}"] +
         [f"{r['id']:>8} {human_size(r['size']):>10} {r['created_at']:25} {r['author'] or '-':16}"
          f"{' (current)' if r['current'] else ''}" for r in rs])


@versions.command("restore", epilog="Example: strongroom versions restore /acme/reports/q3.pdf 42")
@click.argument("path")
@click.argument("version_id", type=int)
@data_dir_option
def restore(path: str, version_id: int, data_dir: Path) -> None:
    """Make VERSION_ID of PATH (/CLIENT/... or /LIBRARY/...) current again (as a new
    version; nothing is lost)."""
    tree_session(data_dir, path).restore(path, version_id)
    click.echo(f"restored version {version_id} of {path}")
