"""`strongroom client export` (registered in appliance.cli.clients)."""
import sys
from pathlib import Path

import click

from strongroom.appliance.cli.options import (Json, data_dir_option, emit, human_size,
                                              json_option, open_app)
from strongroom.appliance.cli.progress import Progress
from strongroom.appliance.errors import BadRequest


@click.command("export", epilog="Examples: strongroom client export acme --to acme.tar\n\n"
                                "strongroom client export acme --to acme-all.tar --versions "
                                "--json\n\n"
                                "strongroom client export acme --to - | gzip > acme.tar.gz")
@click.argument("name")
@click.option("--to", "to", required=True, metavar="FILE.tar",
              help="The tar to write (FILE.tar.partial until it is complete; an existing "
                   "file is refused), or - for standard output.")
@click.option("--versions", is_flag=True,
              help="Also every version of every current file, under @versions/.")
@data_dir_option
@json_option
def export(name: str, to: str, versions: bool, data_dir: Path, as_json: bool) -> None:
    """Export client NAME's current tree, decrypted, as a tar: NAME/... with folders
    and modification times, and manifest.json (each file's path, size, sha256,
    modified time and version ids). Deleted items (the trash) are not exported.
    Shows a progress bar on a terminal; audited."""
    to_stdout = to == "-"
    if to_stdout and as_json:
        raise BadRequest("--json and --to - would share standard output: choose one")
    if to_stdout and sys.stdout.isatty():
        raise BadRequest("--to -: standard output is a terminal; redirect it to a file or pipe")
    admin = open_app(data_dir).admin()
    with Progress(f"export {name}", unit="bytes") as meter:
        out = admin.export_client(name, sys.stdout.buffer if to_stdout else Path(to),
                                  versions=versions, meter=meter)
    if to_stdout:
        click.echo(_summary(out), err=True)
    else:
        emit(out, as_json, lambda d: [_summary(d)])


def _summary(d: Json) -> str:
    where = "standard output" if d["to"] == "-" else d["to"]
    text = (f"exported {d['client']} to {where}: {d['files']} files, {d['folders']} folders"
            + (f", {d['versions']} versions" if d["with_versions"] else "")
            + f", {human_size(d['bytes'])}")
    if "tar_bytes" in d:
        text += f" (tar {human_size(d['tar_bytes'])})"
    if d["skipped"]:
        text += f"; {d['skipped']} versions removed by retention meanwhile were left out"
    return text
