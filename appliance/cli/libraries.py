"""`strongroom library ...`"""
from pathlib import Path

import click

from strongroom.appliance.cli.options import data_dir_option, emit, json_option, open_app


@click.group()
def library() -> None:
    """Shared libraries: folders staff publish read-only to all or chosen clients."""


@library.command("add", epilog="Examples: strongroom library add handbook\n\n"
                               "strongroom library add tax-guides --clients acme,beta")
@click.argument("name")
@click.option("--clients", help="Comma-separated clients that see it (default: every client).")
@data_dir_option
@json_option
def library_add(name: str, clients: str | None, data_dir: Path, as_json: bool) -> None:
    """Create library NAME: /NAME in the chosen clients' view, read-only for them.
    Staff read every library; grant them write with 'strongroom acl grant /NAME ...'.
    Clients and libraries share one namespace, unique without regard to case."""
    names = [c.strip() for c in clients.split(",") if c.strip()] if clients else None
    out = open_app(data_dir).admin().add_library(name, names)
    emit(out, as_json, lambda d: [f"library {d['name']} created, shared with "
                                  f"{'every client' if d['clients'] == '*' else ', '.join(d['clients'])}"])


@library.command("list", epilog="Example: strongroom library list --json")
@data_dir_option
@json_option
def library_list(data_dir: Path, as_json: bool) -> None:
    """List libraries and who sees them."""
    rows = open_app(data_dir).admin().list_libraries()
    emit(rows, as_json, lambda rs: [f"{'NAME':24} CLIENTS"] + [
        f"{r['name']:24} {'*' if r['clients'] == '*' else ','.join(r['clients'])}" for r in rs])


@library.command("remove", epilog="Examples: strongroom library remove old-handbook\n\n"
                                  "strongroom library remove old-handbook --with-files")
@click.argument("name")
@click.option("--with-files", is_flag=True,
              help="Also delete what it holds, for good: files, folders, all their versions "
                   "and its trash; its key is destroyed. There is no trash for a removed "
                   "library.")
@data_dir_option
@json_option
def library_remove(name: str, with_files: bool, data_dir: Path, as_json: bool) -> None:
    """Remove library NAME: it disappears from every view. Refused while it holds files
    or folders (in its trash too) unless --with-files."""
    out = open_app(data_dir).admin().remove_library(name, with_files=with_files)
    emit(out, as_json, lambda d: [f"library {name} removed ({d['entries']} files and folders, "
                                  f"{d['versions']} versions deleted with it)"])
