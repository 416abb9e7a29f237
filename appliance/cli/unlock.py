"""`strongroom unlock`: hands the passphrase to a daemon started locked (issue 15)."""
from pathlib import Path

import click

from strongroom.appliance.cli.options import data_dir_option, passphrase_asker
from strongroom.appliance.cli.daemon import passphrase_file_option


@click.command(epilog="""\b
Examples:
  strongroom unlock                       # asks the passphrase on the terminal
  strongroom unlock --passphrase-file /run/credentials/strongroom.service/passphrase""")
@data_dir_option
@passphrase_file_option
def unlock(data_dir: Path, passphrase_file: Path | None) -> None:
    """Give the master key's passphrase to the daemon waiting locked.

    The daemon listens on DATA/run/unlock.sock (the service user's only). A wrong
    passphrase is refused and the daemon stays locked; a right one makes it serve.
    """
    from strongroom.appliance import unlocking
    from strongroom.appliance.errors import AuthFailed, Unavailable
    where = unlocking.socket_path(data_dir)
    if not where.exists():
        raise Unavailable(f"no daemon is waiting locked for {data_dir} (no {where}): it is "
                          "not running, serves already, or its key is not sealed by a "
                          "passphrase ('strongroom status' says which)")
    passphrase = passphrase_asker(passphrase_file)()
    try:
        answer = unlocking.send(data_dir, passphrase)
    except OSError as e:
        raise Unavailable(f"cannot reach the locked daemon at {where}: "
                          f"{e.strerror or e}") from None
    if answer != unlocking.OK:
        raise AuthFailed(answer.removeprefix("error ") or "the daemon closed the connection")
    click.echo("unlocked: the daemon is starting to serve")
