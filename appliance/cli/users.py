"""`strongroom user ...`"""
from collections.abc import Iterator
from pathlib import Path
import sys
from typing import TextIO

import click

from strongroom.appliance.cli.options import (Json, converted, data_dir_option, emit, fail,
                                              iso_time, json_option, open_app)
from strongroom.auth import totp
from strongroom.config.converters import duration_with_unit


@click.group()
def user() -> None:
    """Users: client users (one client's tree) and staff (every client)."""


@user.command("add", epilog="Examples: echo 'a long passphrase' | "
                             "strongroom user add alice --client acme --password-stdin --json\n\n"
                             "strongroom user add bob --client acme --email bob@acme.example "
                             "--invite")
@click.argument("login")
@click.option("--client", "client_name", help="The client this user belongs to.")
@click.option("--staff", is_flag=True, help="Staff user: sees every client's tree.")
@click.option("--email", help="Address for notifications.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--no-totp", is_flag=True, help="Do not enroll a TOTP second factor.")
@click.option("--invite", is_flag=True,
              help="No password yet: print a one-time link ([web] invite_lifetime) where the "
                   "user sets a password and enrols TOTP in the web portal.")
@data_dir_option
@json_option
def add(login: str, client_name: str | None, staff: bool, email: str | None,
        password_stdin: bool, no_totp: bool, invite: bool, data_dir: Path,
        as_json: bool) -> None:
    """Create user LOGIN. Without --password-stdin a strong password is generated and printed;
    with --invite the user chooses one through the printed link instead."""
    if bool(client_name) == staff:
        fail("give exactly one of --client NAME or --staff", 2)
    if invite and (password_stdin or no_totp):
        fail("--invite lets the user choose a password and enrol TOTP: it goes with neither "
             "--password-stdin nor --no-totp", 2)
    password = _read_password(password_stdin)
    out = open_app(data_dir).admin().add_user(login, client=client_name, staff=staff,
                                              email=email, password=password,
                                              with_totp=not no_totp, invite=invite)
    emit(out, as_json, _human_user)


def _human_user(d: Json) -> Iterator[str]:
    yield f"user {d['login']} created ({'user of client ' + d['client'] if d['client'] else 'staff'})"
    yield from _human_secrets(d)
    if "invite_url" in d:
        yield (f"invitation link (one use, until {iso_time(d['invite_expires_at'])}; send it "
               "to the user):")
        yield d["invite_url"]


def _human_secrets(d: Json) -> Iterator[str]:
    if "password" in d:
        yield f"password: {d['password']}"
    if "totp_secret" in d:
        yield f"TOTP secret: {d['totp_secret']}"
        yield f"otpauth URI: {d['otpauth_uri']}"
        yield "Scan this with an authenticator app (or type the secret into it):"
        yield totp.qr_text(d["otpauth_uri"]).rstrip("\n")
        yield ("Log in with the password, then the app's 6-digit code when asked; clients that "
               "ask only once (WebDAV drives, some SFTP programs) take the password followed "
               "by the code.")


def _read_password(password_stdin: bool) -> str | None:
    if not password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("no password on standard input", 2)
    return password


@user.command("passwd", epilog="Example: echo 'a new long passphrase' | "
                                "strongroom user passwd alice --password-stdin")
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@data_dir_option
@json_option
def passwd(login: str, password_stdin: bool, data_dir: Path, as_json: bool) -> None:
    """Set LOGIN's password (generated and printed without --password-stdin).
    Ends the user's WebDAV drive sessions."""
    out = open_app(data_dir).admin().set_password(login, _read_password(password_stdin))
    emit(out, as_json, lambda d: [f"password of {login} changed"] + list(_human_secrets(d)))


@user.command("totp-reset", epilog="Example: strongroom user totp-reset alice --json")
@click.argument("login")
@click.option("--off", is_flag=True, help="Remove the second factor instead (not recommended).")
@data_dir_option
@json_option
def totp_reset(login: str, off: bool, data_dir: Path, as_json: bool) -> None:
    """Enrol a new TOTP secret for LOGIN (the old one stops working at once)."""
    out = open_app(data_dir).admin().reset_totp(login, enable=not off)
    emit(out, as_json, lambda d: [f"TOTP of {login} {'removed' if off else 'reset'}"]
         + list(_human_secrets(d)))


@user.command("disable", epilog="Example: strongroom user disable alice")
@click.argument("login")
@data_dir_option
@json_option
def disable(login: str, data_dir: Path, as_json: bool) -> None:
    """Disable LOGIN: no new logins; live SFTP sessions and drive sessions end within seconds."""
    out = open_app(data_dir).admin().set_disabled(login, True)
    emit(out, as_json, lambda d: [f"user {login} disabled"])


@user.command("enable", epilog="Example: strongroom user enable alice")
@click.argument("login")
@data_dir_option
@json_option
def enable(login: str, data_dir: Path, as_json: bool) -> None:
    """Enable LOGIN again."""
    out = open_app(data_dir).admin().set_disabled(login, False)
    emit(out, as_json, lambda d: [f"user {login} enabled"])


@user.command("unlock", epilog="Examples: strongroom user unlock alice\n\n"
                                "strongroom user unlock --address 203.0.113.7")
@click.argument("login", required=False)
@click.option("--address", help="Also (or only) clear the failed logins of this source address.")
@data_dir_option
@json_option
def unlock(login: str | None, address: str | None, data_dir: Path, as_json: bool) -> None:
    """Forget failed logins of LOGIN (and/or an address), lifting a block at once."""
    out = open_app(data_dir).admin().unlock(login, address)
    emit(out, as_json, lambda d: [f"cleared {d['cleared']} failed-login counter(s)"])


@user.group("app-password")
def app_password() -> None:
    """Per-device passwords that log in without a TOTP code (network drives)."""


@app_password.command("create", epilog='Example: strongroom user app-password create alice '
                                       '--label "Laptop" --expires 90d')
@click.argument("login")
@click.option("--label", required=True, help="What the password is for; used to revoke it.")
@click.option("--expires", callback=converted(duration_with_unit),
              help="Lifetime with a unit: 90d, 12h, 30m or 3600s (default: none).")
@data_dir_option
@json_option
def app_password_create(login: str, label: str, expires: float | None, data_dir: Path,
                        as_json: bool) -> None:
    """Create an app password for LOGIN; it is printed once and stored only as a hash."""
    out = open_app(data_dir).admin().create_app_password(login, label, expires)
    emit(out, as_json, lambda d: [f"app password {label!r} for {login} (shown only now):",
                                  d["password"]])


@app_password.command("list")
@click.argument("login")
@data_dir_option
@json_option
def app_password_list(login: str, data_dir: Path, as_json: bool) -> None:
    """List LOGIN's app passwords (labels and dates; the secrets are not kept)."""
    rows = open_app(data_dir).admin().list_app_passwords(login)
    emit(rows, as_json, lambda rs: [f"{'LABEL':30} {'CREATED':25} {'LAST USED':25} EXPIRES"] +
         [f"{r['label']:30} {iso_time(r['created_at']):25} {iso_time(r['last_used_at']):25} "
          f"{iso_time(r['expires_at'])}" for r in rs])


@app_password.command("revoke", epilog='Example: strongroom user app-password revoke alice Laptop')
@click.argument("login")
@click.argument("label")
@data_dir_option
def app_password_revoke(login: str, label: str, data_dir: Path) -> None:
    """Revoke LOGIN's app password LABEL; it stops working at once."""
    open_app(data_dir).admin().revoke_app_password(login, label)
    click.echo(f"app password {label!r} of {login} revoked")


@user.command("sessions")
@click.argument("login")
@data_dir_option
@json_option
def sessions(login: str, data_dir: Path, as_json: bool) -> None:
    """List LOGIN's WebDAV drive sessions (opened with password+code)."""
    rows = open_app(data_dir).admin().list_drive_sessions(login)
    emit(rows, as_json, lambda rs: [f"{'ID':>6} {'NETWORK':20} {'LAST USED':25} EXPIRES"] +
         [f"{r['id']:>6} {r['network']:20} {iso_time(r['last_used_at']):25} "
          f"{iso_time(r['expires_at'])}" for r in rs])



@user.command("set", epilog="Examples: strongroom user set alice --email alice@acme.example "
                             "--display-name 'Alice Andersson' --language sv\n\n"
                             "strongroom user set alice --email ''")
@click.argument("login")
@click.option("--email", help="Address for notifications ('' removes it).")
@click.option("--display-name", help="A name for people ('' removes it).")
@click.option("--language", type=click.Choice(["en", "sv", "he"]),
              help="Language of the web portal and emails.")
@data_dir_option
@json_option
def set_(login: str, email: str | None, display_name: str | None, language: str | None,
         data_dir: Path, as_json: bool) -> None:
    """Change LOGIN's email address, display name or language."""
    out = open_app(data_dir).admin().set_user(login, email=email, display_name=display_name,
                                              language=language)
    emit(out, as_json, lambda d: [f"user {d['login']}: email {d['email'] or '-'}, display name "
                                  f"{d['display_name'] or '-'}, language {d['language'] or '-'}"])


@user.command("rename", epilog="Example: strongroom user rename alice alice.andersson")
@click.argument("old")
@click.argument("new")
@data_dir_option
@json_option
def rename(old: str, new: str, data_dir: Path, as_json: bool) -> None:
    """Rename user OLD to NEW (logins are unique without regard to case). Grants, keys,
    app passwords and WebDAV locks follow; the user logs in as NEW from now on: live
    SFTP sessions end within seconds, and a mapped drive works once its login is
    changed. The audit trail keeps OLD; 'audit list --user NEW' finds those events too."""
    out = open_app(data_dir).admin().rename_user(old, new)
    emit(out, as_json, lambda d: [f"user {old} renamed to {d['login']}"])


@user.command("remove", epilog="Example: strongroom user remove alice")
@click.argument("login")
@data_dir_option
@json_option
def remove(login: str, data_dir: Path, as_json: bool) -> None:
    """Remove user LOGIN: its drive sessions, SSH keys, app passwords, grants, WebDAV locks
    and failed-login counter go, and its open sessions stop within seconds. The audit
    trail and file versions keep the login."""
    out = open_app(data_dir).admin().remove_user(login)
    emit(out, as_json, lambda d: [f"user {login} removed ({d['grants_removed']} grant(s) "
                                  f"with it)"])


@user.command("list")
@data_dir_option
@json_option
def list_(data_dir: Path, as_json: bool) -> None:
    """List users."""
    rows = open_app(data_dir).admin().list_users()
    emit(rows, as_json, lambda rs: [f"{'LOGIN':20} {'ROLE':7} {'CLIENT':20} TOTP DISABLED"] +
         [f"{r['login']:20} {r['role']:7} {r['client'] or '-':20} {'yes' if r['totp'] else 'no':4} "
          f"{'yes' if r['disabled'] else 'no'}" for r in rs])


@user.group("key")
def key() -> None:
    """SSH public keys a user may log in with over SFTP."""


@key.command("add", epilog="Example: strongroom user key add alice --file ~/alice.pub")
@click.argument("login")
@click.option("--file", "path", type=click.File("r"), default="-", show_default="stdin",
              help="A file holding one OpenSSH public key line (ssh-ed25519 AAAA... comment).")
@data_dir_option
@json_option
def key_add(login: str, path: TextIO, data_dir: Path, as_json: bool) -> None:
    """Authorize a public key for LOGIN."""
    out = open_app(data_dir).admin().add_key(login, path.readline())
    emit(out, as_json, lambda d: [f"key {d['fingerprint']} ({d['type']}) added for {login}"])


@key.command("list")
@click.argument("login")
@data_dir_option
@json_option
def key_list(login: str, data_dir: Path, as_json: bool) -> None:
    """List LOGIN's public keys."""
    rows = open_app(data_dir).admin().list_keys(login)
    emit(rows, as_json, lambda rs: [f"{r['fingerprint']}  {r['type']}  {r['comment'] or ''}"
                                    for r in rs])


@key.command("remove")
@click.argument("login")
@click.argument("fingerprint")
@data_dir_option
def key_remove(login: str, fingerprint: str, data_dir: Path) -> None:
    """Revoke the key with FINGERPRINT (as shown by 'key list') from LOGIN."""
    open_app(data_dir).admin().remove_key(login, fingerprint)
    click.echo(f"key {fingerprint} removed from {login}")
