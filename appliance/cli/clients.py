"""`strongroom client ...`"""
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from strongroom.appliance.cli.client_export import export
from strongroom.appliance.cli.options import (F, Json, data_dir_option, emit, human_size,
                                              json_option, open_app)
from strongroom.appliance.errors import BadRequest
from strongroom.config.converters import (SIZE_FORMS, describe_period, describe_size,
                                          size_with_unit)

KEEP = "keep"


def quota_option(*, removable: bool) -> Callable[[F], F]:
    """--quota SIZE: a unit is required ('10' is not ten bytes), zero is refused;
    with `removable`, 'none' removes the quota (the value None) and leaving it out
    keeps it (the value KEEP)."""
    forms = SIZE_FORMS + (", or none for no quota" if removable else "")

    def callback(ctx: click.Context, param: click.Parameter, value: str | None
                 ) -> int | str | None:
        if value is None:
            return KEEP if removable else None
        if removable and value.strip().lower() == "none":
            return None
        try:
            quota: int = size_with_unit(value)
        except ValueError:
            raise BadRequest(f"--quota: expected a size with its unit, such as {forms}; "
                             f"got {value!r}") from None
        if quota <= 0:
            raise BadRequest("--quota: a quota is above zero" + (
                "; for no quota give 'none'" if removable else " (for none leave it out)"))
        return quota
    return click.option("--quota", callback=callback, metavar="SIZE" + ("|none" if removable
                                                                        else ""),
                        help=f"Storage quota with its unit: {forms}.")


def _quota_text(quota: int | None) -> str:
    return "no quota" if quota is None else f"quota {describe_size(quota)}"


@click.group()
def client() -> None:
    """Clients: the organisations whose private trees Strongroom keeps."""


client.add_command(export)


@client.command("add", epilog="Examples: strongroom client add acme --quota 10GiB\n\n"
                              "strongroom client add beta --quota 500GB --json")
@click.argument("name")
@quota_option(removable=False)
@data_dir_option
@json_option
def add(name: str, quota: int | None, data_dir: Path, as_json: bool) -> None:
    """Create client NAME with its own encryption key and an empty tree. Names of
    clients and libraries are unique without regard to case."""
    out = open_app(data_dir).admin().add_client(name, quota)
    emit(out, as_json, lambda d: [f"client {d['name']} created, {_quota_text(d['quota_bytes'])}"])


@client.command("set", epilog="Examples: strongroom client set acme --quota 20GiB "
                              "--display-name 'Acme Ltd'\n\n"
                              "strongroom client set acme --quota none\n\n"
                              "strongroom client set acme --retention "
                              "keep_all=7d,max_versions=20,history_quota=5GiB\n\n"
                              "strongroom client set acme --retention max_age=default\n\n"
                              "strongroom client set acme --disable")
@click.argument("name")
@quota_option(removable=True)
@click.option("--display-name", help="A name for people ('' removes it).")
@click.option("--disable/--enable", "disabled", default=None,
              help="Disabled: the client's users cannot log in (over any protocol), their "
                   "drive sessions and WebDAV locks end, live SFTP sessions within seconds; "
                   "staff still see the tree.")
@click.option("--retention", metavar="SPEC",
              help="The client's own retention options: OPTION=VALUE,... of keep_all, "
                   "max_age, max_versions, trash_days, history_quota (as in [retention]; "
                   "durations and sizes with their unit, 'none' for no limit where the "
                   "option allows it, 'default' to follow [retention] again); 'default' "
                   "alone drops them all. Options not named stay as they are.")
@data_dir_option
@json_option
def set_(name: str, quota: int | str | None, display_name: str | None, disabled: bool | None,
         retention: str | None, data_dir: Path, as_json: bool) -> None:
    """Change client NAME's quota, display name, retention or whether it is disabled."""
    admin = open_app(data_dir).admin()
    if isinstance(quota, str):   # KEEP
        out = admin.set_client(name, display_name=display_name, disabled=disabled,
                               retention=retention)
    else:
        out = admin.set_client(name, quota=quota, display_name=display_name,
                               disabled=disabled, retention=retention)
    emit(out, as_json, _human_client)


def _human_client(d: Json) -> Iterator[str]:
    yield (f"client {d['name']}" + (f" ({d['display_name']})" if d["display_name"] else "")
           + (" [disabled]" if d["disabled"] else ""))
    yield f"  {_quota_text(d['quota_bytes'])}, {describe_size(d['used_bytes'])} used"
    if "history_bytes" in d:
        yield (f"  older versions {describe_size(d['history_bytes'])}, "
               f"trash {describe_size(d['trash_bytes'])}")


def _human_retention(retention: Json) -> Iterator[str]:
    yield "retention:"
    for name, option in retention.items():
        yield f"  {name:14} {_retention_value(option)}" + (" (its own)" if option["own"]
                                                           else "")


def _retention_value(option: Json) -> str:
    """'7d', '36h', '20', '5.0 GiB (5368709120 bytes)' or 'none'."""
    if "count" in option:
        return "none" if option["count"] is None else str(option["count"])
    if "bytes" in option:
        return "none" if option["bytes"] is None else describe_size(option["bytes"])
    return describe_period(option["seconds"])


@client.command("rename", epilog="Example: strongroom client rename acme acme-ltd")
@click.argument("old")
@click.argument("new")
@data_dir_option
@json_option
def rename(old: str, new: str, data_dir: Path, as_json: bool) -> None:
    """Rename client OLD to NEW. Its users, grants, libraries and WebDAV locks follow;
    staff see /NEW within seconds (open sessions too); the audit trail keeps the events
    under /OLD, and 'audit list --client NEW' finds them."""
    out = open_app(data_dir).admin().rename_client(old, new)
    emit(out, as_json, lambda d: [f"client {old} renamed to {d['name']}"])


@client.command("show", epilog="Example: strongroom client show acme --json")
@click.argument("name")
@data_dir_option
@json_option
def show(name: str, data_dir: Path, as_json: bool) -> None:
    """Show client NAME: display name, quota, usage (current files, older versions,
    trash), its retention (each option marked when it is the client's own), users,
    grants in its tree and the libraries it sees."""
    out = open_app(data_dir).admin().show_client(name)
    emit(out, as_json, _human_show)


def _human_show(d: Json) -> Iterator[str]:
    yield from _human_client(d)
    yield from _human_retention(d["retention"])
    yield "users:" + ("" if d["users"] else " none")
    for u in d["users"]:
        yield (f"  {u['login']}" + (f" <{u['email']}>" if u["email"] else "")
               + (" [disabled]" if u["disabled"] else ""))
    yield "grants:" + ("" if d["grants"] else " none")
    for g in d["grants"]:
        who = f"user {g['user']}" if "user" in g else f"client {g['client']}"
        yield f"  {g['path']:40} {who:28} {g['rights'] or '-'}"
    yield "libraries: " + (", ".join(d["libraries"]) or "none")


@client.command("list", epilog="Example: strongroom client list --json")
@data_dir_option
@json_option
def list_(data_dir: Path, as_json: bool) -> None:
    """List clients with their usage (current files; older versions; trash) and quota."""
    rows = open_app(data_dir).admin().list_clients()
    emit(rows, as_json, lambda rs: [
        f"{'NAME':24} {'USED':>11} {'VERSIONS':>11} {'TRASH':>11} {'QUOTA':>11}  DISPLAY NAME"]
        + [f"{r['name']:24} {human_size(r['used_bytes']):>11} "
           f"{human_size(r['history_bytes']):>11} {human_size(r['trash_bytes']):>11} "
           f"{human_size(r['quota_bytes']):>11}"
           f"  {r['display_name'] or ''}{' [disabled]' if r['disabled'] else ''}".rstrip()
           for r in rs])


@client.command("remove", epilog="Examples: strongroom client remove old-client\n\n"
                                 "strongroom client remove acme --shred --yes --json")
@click.argument("name")
@click.option("--shred", is_flag=True,
              help="Also when it has files: destroy its key, so that none of its data can "
                   "be decrypted any more (backups made earlier keep it until they expire), "
                   "and delete its files, versions and trash.")
@click.option("--yes", is_flag=True,
              help="Do not ask: needed with --shred when not on a terminal.")
@data_dir_option
@json_option
def remove(name: str, shred: bool, yes: bool, data_dir: Path, as_json: bool) -> None:
    """Remove client NAME with its users, their keys, passwords and sessions, its grants
    and its library memberships. Refused while it has files (live, in the trash or as
    versions) unless --shred. The audit trail stays, with one event naming the client
    and what was removed (counts only). A library: 'strongroom library remove'."""
    admin = open_app(data_dir).admin()
    if shred and not yes:
        _confirm_shred(admin.client_holdings(name))
    out = admin.remove_client(name, shred=shred)
    emit(out, as_json, lambda d: [
        f"client {name} removed: {d['files']} files, {d['versions']} versions "
        f"({human_size(d['bytes'])}), {d['users']} users"
        + ("; its key is destroyed" if d["shredded"] else "")])


def _confirm_shred(held: Json) -> None:
    """On a terminal, the admin types the client's name; elsewhere --yes is needed."""
    name = held["name"]
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise BadRequest(f"--shred destroys {name}'s data for good: add --yes to confirm "
                         "(or run it on a terminal and type the client's name)")
    click.echo(f"This destroys client {name} for good: {held['files']} files, "
               f"{held['versions']} versions ({human_size(held['bytes'])}), "
               f"{held['users']} users. Its data cannot be decrypted afterwards.", err=True)
    typed = click.prompt("Type the client's name to confirm", default="", show_default=False,
                         err=True)
    if typed.strip() != name:
        raise BadRequest(f"not confirmed ({typed.strip()!r} is not {name!r}): nothing was "
                         "removed")
