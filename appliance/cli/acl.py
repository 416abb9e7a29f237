"""`strongroom acl ...`"""
from collections.abc import Iterator
from pathlib import Path

import click

from strongroom.appliance.cli.options import (F, Json, data_dir_option, emit, json_option,
                                              open_app)

_subject = [click.option("--user", "login", help="A user (staff, or a user of this client)."),
            click.option("--client", "client_name", help="Every user of this client.")]


def subject_options(f: F) -> F:
    for option in reversed(_subject):
        f = option(f)
    return f


_RIGHTS_HELP = ("comma-separated names: read (list and download), write, delete, manage "
                "(all of them); e.g. read,write (no other form).")


def _human_grants(rows: list[Json]) -> Iterator[str]:
    yield f"{'PATH':40} {'WHO':28} RIGHTS"
    for r in rows:
        who = f"user {r['user']}" if "user" in r else f"client {r['client']}"
        yield f"{r['path']:40} {who:28} {r['rights'] or '-'}"


@click.group()
def acl() -> None:
    """Folder rights: read (list and download), write, delete, manage; inherited below."""


@acl.command("grant", epilog="Examples: strongroom acl grant /acme --user sam "
                             "--rights read,write,delete\n\n"
                             "strongroom acl grant /acme/reports --client acme --rights read")
@click.argument("path")
@subject_options
@click.option("--rights", required=True, help="The rights: " + _RIGHTS_HELP)
@data_dir_option
@json_option
def grant(path: str, login: str | None, client_name: str | None, rights: str, data_dir: Path,
          as_json: bool) -> None:
    """Give rights on folder PATH (/CLIENT/... or /LIBRARY/...) and everything below it."""
    out = open_app(data_dir).admin().grant(path, login=login, client=client_name, rights=rights)
    emit(out, as_json, _human_grants_one)


def _human_grants_one(d: Json) -> list[str]:
    return list(_human_grants([d]))[1:]


@acl.command("revoke", epilog="Example: strongroom acl revoke /acme --user sam --rights delete")
@click.argument("path")
@subject_options
@click.option("--rights", help="Only these rights (default: the whole grant): " + _RIGHTS_HELP)
@data_dir_option
@json_option
def revoke(path: str, login: str | None, client_name: str | None, rights: str, data_dir: Path,
           as_json: bool) -> None:
    """Take rights granted on exactly PATH away again."""
    out = open_app(data_dir).admin().revoke(path, login=login, client=client_name, rights=rights)
    emit(out, as_json, _human_grants_one)


@acl.command("list", epilog="Example: strongroom acl list --user sam --json")
@click.argument("path", required=False)
@subject_options
@data_dir_option
@json_option
def list_(path: str | None, login: str | None, client_name: str | None, data_dir: Path,
          as_json: bool) -> None:
    """List grants (all, or on PATH, /CLIENT/... or /LIBRARY/..., or of one user or
    client)."""
    rows = open_app(data_dir).admin().list_grants(path, login=login, client=client_name)
    emit(rows, as_json, _human_grants)


@acl.command("check", epilog="Example: strongroom acl check alice write /acme/reports/q3.pdf")
@click.argument("login")
@click.argument("action", type=click.Choice(["list", "read", "write", "delete"]))
@click.argument("path")
@data_dir_option
@json_option
def check(login: str, action: str, path: str, data_dir: Path, as_json: bool) -> None:
    """What LOGIN doing ACTION at PATH (/CLIENT/... or /LIBRARY/...; LOGIN may see it
    elsewhere, as --json's seen_as says) would meet: allowed, denied or not found.
    The same decision both protocols make."""
    out = open_app(data_dir).admin().check(login, action, path)
    emit(out, as_json, lambda d: [d["verdict"]])
