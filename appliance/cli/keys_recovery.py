"""`strongroom keys export-recovery|import-recovery` (appliance.service.recovery), and how
a recovery passphrase is read (also for `strongroom restore --recovery`)."""
import getpass
import sys
from pathlib import Path

import click

from strongroom.appliance.cli.keys import keys
from strongroom.appliance.cli.options import (Json, cli_admin_name, data_dir_option, emit,
                                              json_option, open_app, passphrase_asker)

__all__ = ["keys", "recovery_passphrase", "recovery_passphrase_option"]

recovery_passphrase_option = click.option(
    "--passphrase-file", "passphrase_file", type=click.Path(dir_okay=False, path_type=Path),
    help="File whose first line is the recovery passphrase. Without it, the passphrase is "
         "asked on the terminal; off a terminal this option is required.")


def recovery_passphrase(passphrase_file: Path | None, *, new: bool) -> str:
    """The recovery passphrase: the file's first line, else asked on the terminal (twice
    for a `new` one); a new one must be long enough (service.recovery)."""
    from strongroom.appliance.errors import BadRequest
    from strongroom.appliance.service.recovery import check_passphrase
    if passphrase_file is not None:
        passphrase = _first_line(passphrase_file)
    elif not sys.stdin.isatty():
        raise BadRequest("no terminal to ask the recovery passphrase on: give "
                         "--passphrase-file FILE")
    else:
        passphrase = getpass.getpass("Recovery passphrase: ")
        if new and getpass.getpass("The same recovery passphrase again: ") != passphrase:
            raise BadRequest("the two passphrases differ; nothing was written")
    if new:
        check_passphrase(passphrase)
    return passphrase


def _first_line(path: Path) -> str:
    from strongroom.appliance.errors import BadRequest
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise BadRequest(f"cannot read the passphrase file {path}: {reason}") from None
    return text.split("\n", 1)[0].removesuffix("\r")


@keys.command("export-recovery", epilog="Example: strongroom keys export-recovery "
                                        "--to /media/safe/strongroom-recovery.key")
@click.option("--to", "to", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The new file to write (never overwritten).")
@recovery_passphrase_option
@data_dir_option
@json_option
def export_recovery(to: Path, passphrase_file: Path | None, data_dir: Path,
                    as_json: bool) -> None:
    """Write the master key, encrypted with a recovery passphrase (argon2id, AES-256-GCM),
    to the new file TO, for a safe. The passphrase (at least 12 characters) is asked
    twice and stored nowhere: keep it apart from the file. Audited (key id only)."""
    from strongroom.appliance.service.recovery import export_recovery as export
    app = open_app(data_dir)
    out = export(app, to, recovery_passphrase(passphrase_file, new=True))
    emit(out, as_json, lambda d: [
        f"wrote the recovery key of master key {d['key_id']} to {d['file']}",
        "the passphrase is not stored anywhere: without it the file is useless, and "
        "with it the file opens every client's data; keep them apart"])


@keys.command("import-recovery", epilog="Example: strongroom keys import-recovery "
                                        "/media/safe/strongroom-recovery.key")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@recovery_passphrase_option
@click.option("--key-to", "key_to", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the checked key to this new file (0600) instead of the key "
                   "source: for a systemd credential, which only systemd-creds seals.")
@data_dir_option
@json_option
def import_recovery(file: Path, passphrase_file: Path | None, key_to: Path | None,
                    data_dir: Path, as_json: bool) -> None:
    """Put the master key in the recovery FILE back into the configured key source,
    once it is checked to open this appliance's client keys. A source already holding
    it is left alone; one holding another working key is not replaced. Audited."""
    from strongroom.appliance.service.recovery import import_recovery as restore_key
    passphrase = recovery_passphrase(passphrase_file, new=False)
    out = restore_key(data_dir, file, passphrase, actor=cli_admin_name(),
                      ask=passphrase_asker(), key_to=key_to)
    emit(out, as_json, _imported)


def _imported(d: Json) -> list[str]:
    checked = (f"it opens all {d['client_keys']} client keys" if d["client_keys"]
               else "there are no client keys to check it on")
    if not d["changed"]:
        return [f"the key source ({d['source']}) already holds master key {d['key_id']} "
                f"({checked}); nothing was changed"]
    if d["key_file"]:
        return [f"master key {d['key_id']} written to {d['key_file']} ({checked}); seal it "
                f"into the key source ({d['source']}), e.g. systemd-creds encrypt, then "
                "shred the file"]
    return [f"master key {d['key_id']} put in the key source ({d['source']}; {checked}); "
            "the daemon can start"]
