"""`strongroom doctor`"""
from collections.abc import Iterator
from pathlib import Path

import click

from strongroom.appliance.cli.options import data_dir_option, emit, json_option, open_app
from strongroom.appliance.service.consistency import Report


@click.command(epilog="Example: strongroom doctor --json")
@click.option("--repair", is_flag=True, help="Delete stray blobs and staging leftovers "
                                             "older than --min-age seconds.")
@click.option("--min-age", type=float, default=600.0, show_default=True)
@data_dir_option
@json_option
def doctor(repair: bool, min_age: float, data_dir: Path, as_json: bool) -> None:
    """Check that every version has its blob and every blob its version.

    Exits 1 when something is wrong (missing blobs, or stray files left unrepaired).
    """
    report = open_app(data_dir).admin().doctor(repair=repair, min_age=min_age)
    emit(report, as_json, _human)
    raise SystemExit(0 if report["ok"] else 1)


def _human(r: Report) -> Iterator[str]:
    yield f"{r['blobs']} blobs, {r['versions']} versions"
    lists = (("stray_blobs", r["stray_blobs"]), ("missing_blobs", r["missing_blobs"]),
             ("staging_files", r["staging_files"]), ("removed", r["removed"]))
    for key, names in lists:
        if names:
            yield f"{key.replace('_', ' ')}: {len(names)}: {' '.join(names[:20])}"
    yield "consistent" if r["ok"] else "NOT consistent"
