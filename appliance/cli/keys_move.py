"""`strongroom keys move SOURCE` (appliance.service.keys_move), added to the `keys` group."""
import sys
from collections.abc import Callable
from pathlib import Path

import click

from strongroom.appliance.cli.keys import keys
from strongroom.appliance.cli.options import (Json, data_dir_option, emit, json_option,
                                              open_app, prompt_passphrase)

__all__ = ["keys"]


@keys.command("move", epilog="Examples:\n\n\b\n"
              "  strongroom keys move file:/etc/strongroom/master.key\n"
              "  strongroom keys move passphrase\n"
              "  strongroom keys move systemd-credential:strongroom-master --key-to /root/k")
@click.argument("source")
@click.option("--new-passphrase-file", "new_passphrase_file",
              type=click.Path(dir_okay=False, path_type=Path),
              help="For SOURCE passphrase: the new passphrase (first line); else asked twice "
                   "on a terminal. The current one, if any: strongroom --passphrase-file.")
@click.option("--key-to", "key_to", type=click.Path(dir_okay=False, path_type=Path),
              help="For a systemd credential: a new file (0600) to receive the key, which "
                   "you then seal with systemd-creds encrypt.")
@data_dir_option
@json_option
def move(source: str, new_passphrase_file: Path | None, key_to: Path | None, data_dir: Path,
         as_json: bool) -> None:
    """Move the master key (unchanged) to another source: file:PATH, passphrase[:PATH]
    or systemd-credential:NAME. It is written there and read back, the config names the
    new source, then the old copy is wiped and removed. From passphrase to passphrase:
    a new passphrase. Restart the daemon afterwards. Audited."""
    from strongroom.appliance.service.keys_move import move_key
    app = open_app(data_dir)
    out = move_key(app, source, _new_passphrase(new_passphrase_file), key_to)
    emit(out, as_json, _moved)


def _new_passphrase(given: Path | None) -> Callable[[], str]:
    """The new passphrase: --new-passphrase-file, else asked twice on a terminal; never
    the current one's file (that would make a passphrase change a silent no-op)."""
    def ask() -> str:
        from strongroom.appliance.errors import BadRequest
        from strongroom.appliance.keysource import read_passphrase_file
        if given is not None:
            return read_passphrase_file(given)
        if not sys.stdin.isatty():
            raise BadRequest("no terminal to ask the new passphrase on: give "
                             "--new-passphrase-file FILE")
        return prompt_passphrase(confirm=True)
    return ask


def _moved(d: Json) -> list[str]:
    lines = [f"master key {d['key_id']} moved from {d['from']} to {d['to']}; the config now "
             f"says master_key_source = \"{d['source']}\""]
    if d["key_file"]:
        lines.append(f"the key is in {d['key_file']}: seal it with systemd-creds encrypt, "
                     "shred the file, and set LoadCredentialEncrypted= in the unit")
    if d["removed"]:
        lines.append(f"the old copy {d['removed']} was wiped and removed")
    lines.append("restart the daemon so that it reads the key from its new place")
    return lines
