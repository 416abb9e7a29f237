"""`strongroom versions ...`"""
from pathlib import Path

import click

from strongroom.appliance.cli.options import (Json, data_dir_option, emit, human_size,
                                              iso_time, json_option, open_app, tree_session)


@click.group()
def versions() -> None:
    """Earlier versions of files: list, restore, pin and unpin."""


@versions.command("list", epilog="Example: strongroom versions list /acme/reports/q3.pdf")
@click.argument("path")
@data_dir_option
@json_option
def list_(path: str, data_dir: Path, as_json: bool) -> None:
    """List every version of PATH (/CLIENT/... or /LIBRARY/...), oldest first; the
    current one and pinned ones are marked."""
    rows: list[Json] = [
        {"id": v.id, "size": v.size, "digest": v.digest, "created_at": iso_time(v.created_at),
         "mtime": iso_time(v.mtime), "author": v.author, "current": v.current,
         "pinned": v.pinned}
        for v in tree_session(data_dir, path).versions(path)]
    emit(rows, as_json, lambda rs: [f"{'ID':>8} {'SIZE':>10} {'CREATED':25} {'AUTHOR':16}"] +
         [f"{r['id']:>8} {human_size(r['size']):>10} {r['created_at']:25} {r['author'] or '-':16}"
          f"{' (current)' if r['current'] else ''}{' (pinned)' if r['pinned'] else ''}"
          for r in rs])


@versions.command("restore", epilog="Example: strongroom versions restore /acme/reports/q3.pdf 42")
@click.argument("path")
@click.argument("version_id", type=int)
@data_dir_option
def restore(path: str, version_id: int, data_dir: Path) -> None:
    """Make VERSION_ID of PATH (/CLIENT/... or /LIBRARY/...) current again (as a new
    version; nothing is lost)."""
    tree_session(data_dir, path).restore(path, version_id)
    click.echo(f"restored version {version_id} of {path}")


@versions.command("pin", epilog="Example: strongroom versions pin /acme/reports/q3.pdf 42")
@click.argument("path")
@click.argument("version_id", type=int)
@data_dir_option
@json_option
def pin(path: str, version_id: int, data_dir: Path, as_json: bool) -> None:
    """Pin VERSION_ID of PATH (/CLIENT/... or /LIBRARY/...): retention, trash expiry and
    the history budget never remove it."""
    out = open_app(data_dir).admin().pin_version(path, version_id, pinned=True)
    emit(out, as_json, lambda d: [f"version {version_id} of {d['path']} "
                                  + ("pinned" if d["changed"] else "was already pinned")])


@versions.command("unpin", epilog="Example: strongroom versions unpin /acme/reports/q3.pdf 42")
@click.argument("path")
@click.argument("version_id", type=int)
@data_dir_option
@json_option
def unpin(path: str, version_id: int, data_dir: Path, as_json: bool) -> None:
    """Unpin VERSION_ID of PATH: retention treats it like any other version again."""
    out = open_app(data_dir).admin().pin_version(path, version_id, pinned=False)
    emit(out, as_json, lambda d: [f"version {version_id} of {d['path']} "
                                  + ("unpinned" if d["changed"] else "was not pinned")])
