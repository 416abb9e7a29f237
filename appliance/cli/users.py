"""`strongroom user ...`"""
import sys

import click

from appliance.cli.options import data_dir_option, emit, fail, json_option, open_app


@click.group()
def user():
    """Users: client users (one client's tree) and staff (every client)."""


@user.command("add", epilog="Example: echo 'a long passphrase' | "
                             "strongroom user add alice --client acme --password-stdin --json")
@click.argument("login")
@click.option("--client", "client_name", help="The client this user belongs to.")
@click.option("--staff", is_flag=True, help="Staff user: sees every client's tree.")
@click.option("--email", help="Address for notifications.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--no-totp", is_flag=True, help="Do not enroll a TOTP second factor.")
@data_dir_option
@json_option
def add(login, client_name, staff, email, password_stdin, no_totp, data_dir, as_json):
    """Create user LOGIN. Without --password-stdin a strong password is generated and printed."""
    if bool(client_name) == staff:
        fail("give exactly one of --client NAME or --staff", 2)
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("no password on standard input", 2)
    out = open_app(data_dir).admin().add_user(login, client=client_name, staff=staff,
                                              email=email, password=password,
                                              with_totp=not no_totp)
    emit(out, as_json, _human_user)


def _human_user(d):
    yield f"user {d['login']} created ({d['role']}{', client ' + d['client'] if d['client'] else ''})"
    if "password" in d:
        yield f"password: {d['password']}"
    if "totp_secret" in d:
        yield f"TOTP secret: {d['totp_secret']}"
        yield f"otpauth URI: {d['otpauth_uri']}"


@user.command("list")
@data_dir_option
@json_option
def list_(data_dir, as_json):
    """List users."""
    rows = open_app(data_dir).admin().list_users()
    emit(rows, as_json, lambda rs: [f"{'LOGIN':20} {'ROLE':7} {'CLIENT':20} TOTP DISABLED"] +
         [f"{r['login']:20} {r['role']:7} {r['client'] or '-':20} {'yes' if r['totp'] else 'no':4} "
          f"{'yes' if r['disabled'] else 'no'}" for r in rs])


@user.group("key")
def key():
    """SSH public keys a user may log in with over SFTP."""


@key.command("add", epilog="Example: strongroom user key add alice --file ~/alice.pub")
@click.argument("login")
@click.option("--file", "path", type=click.File("r"), default="-", show_default="stdin",
              help="A file holding one OpenSSH public key line (ssh-ed25519 AAAA... comment).")
@data_dir_option
@json_option
def key_add(login, path, data_dir, as_json):
    """Authorize a public key for LOGIN."""
    out = open_app(data_dir).admin().add_key(login, path.readline())
    emit(out, as_json, lambda d: [f"key {d['fingerprint']} ({d['type']}) added for {login}"])


@key.command("list")
@click.argument("login")
@data_dir_option
@json_option
def key_list(login, data_dir, as_json):
    """List LOGIN's public keys."""
    rows = open_app(data_dir).admin().list_keys(login)
    emit(rows, as_json, lambda rs: [f"{r['fingerprint']}  {r['type']}  {r['comment'] or ''}"
                                    for r in rs])


@key.command("remove")
@click.argument("login")
@click.argument("fingerprint")
@data_dir_option
def key_remove(login, fingerprint, data_dir):
    """Revoke the key with FINGERPRINT (as shown by 'key list') from LOGIN."""
    open_app(data_dir).admin().remove_key(login, fingerprint)
    click.echo(f"key {fingerprint} removed from {login}")
