"""`strongroom folder ...`"""
from pathlib import Path

import click

from strongroom.appliance.cli.options import data_dir_option, emit, json_option, open_app


@click.group()
def folder() -> None:
    """Folders in client and library trees, made as the administrator."""


@folder.command("add", epilog="Examples: strongroom folder add /acme/inbox\n\n"
                              "strongroom folder add /acme/reports/2026 --parents\n\n"
                              "then: strongroom acl grant /acme/inbox --client acme "
                              "--rights read,write")
@click.argument("path")
@click.option("--parents", "-p", is_flag=True,
              help="Also make the folders on the way; no error if it exists.")
@data_dir_option
@json_option
def add(path: str, parents: bool, data_dir: Path, as_json: bool) -> None:
    """Make folder PATH (/CLIENT/... or /LIBRARY/...), e.g. to grant rights on it.
    Audited like any folder made over WebDAV or SFTP (action mkdir)."""
    out = open_app(data_dir).admin().add_folder(path, parents=parents)
    emit(out, as_json, lambda d: [f"folder {f} created" for f in d["created"]]
         or [f"folder {d['path']} exists already"])
