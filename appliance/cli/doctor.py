"""`strongroom doctor`"""
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from strongroom.appliance.cli.options import (converted, data_dir_option, emit, human_size,
                                              json_option, open_app)
from strongroom.appliance.cli.progress import Progress
from strongroom.appliance.errors import BadRequest
from strongroom.appliance.service.admin_verify import Scrub


def _percent(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise ValueError(f"expected a percentage such as 10 or 12.5; got {text!r}") from None
    if not 0 < value <= 100:
        raise ValueError(f"a percentage above 0 and at most 100; got {text!r}")
    return value


@click.command(epilog="Examples: strongroom doctor --json\n\n"
                      "strongroom doctor --verify\n\n"
                      "strongroom doctor --verify --sample 10 --json")
@click.option("--repair", is_flag=True, help="Delete stray blobs and staging leftovers "
                                             "older than --min-age seconds.")
@click.option("--min-age", type=float, default=600.0, show_default=True)
@click.option("--verify", is_flag=True,
              help="Also decrypt and authenticate every chunk of every version's blob "
                   "(current, older and in the trash), with a progress bar on a terminal; "
                   "reads the whole store.")
@click.option("--sample", metavar="PERCENT", callback=converted(_percent),
              help="With --verify: only a random PERCENT of the versions (0 < PERCENT <= 100).")
@data_dir_option
@json_option
def doctor(repair: bool, min_age: float, verify: bool, sample: float | None, data_dir: Path,
           as_json: bool) -> None:
    """Check that every version has its blob and every blob its version; with --verify,
    also that every version's blob decrypts and authenticates, naming each damaged
    version with its client and path.

    Exits 1 when something is wrong (missing or damaged blobs, or stray files left
    unrepaired).
    """
    if sample is not None and not verify:
        raise BadRequest("--sample goes with --verify")
    admin = open_app(data_dir).admin()
    report: dict[str, Any] = dict(admin.doctor(repair=repair, min_age=min_age))
    if verify:
        with Progress("verify", unit="items") as meter:
            scrub = admin.verify_blobs(100.0 if sample is None else sample, meter=meter)
        report["verify"] = scrub
        report["ok"] = report["ok"] and scrub["ok"]
    emit(report, as_json, _human)
    raise SystemExit(0 if report["ok"] else 1)


def _human(r: dict[str, Any]) -> Iterator[str]:
    yield f"{r['blobs']} blobs, {r['versions']} versions"
    lists = (("stray_blobs", r["stray_blobs"]), ("missing_blobs", r["missing_blobs"]),
             ("staging_files", r["staging_files"]), ("removed", r["removed"]))
    for key, names in lists:
        if names:
            yield f"{key.replace('_', ' ')}: {len(names)}: {' '.join(names[:20])}"
    yield from (f"keys: {line}" for line in r.get("keys", []))
    if "verify" in r:
        yield from _human_scrub(r["verify"])
    yield "consistent" if r["ok"] else "NOT consistent"


def _human_scrub(v: Scrub) -> Iterator[str]:
    share = "" if v["sample_percent"] == 100 else f" (a {v['sample_percent']:g}% sample)"
    yield (f"verified {v['checked']} of {v['versions']} versions{share}: "
           f"{human_size(v['bytes'])} in {v['seconds']:.1f} s, {len(v['damaged'])} damaged")
    for d in v["damaged"]:
        where = " (in the trash)" if d["deleted"] else ""
        yield f"damaged: {d['path']}{where} version {d['version']}: {d['problem']}"
