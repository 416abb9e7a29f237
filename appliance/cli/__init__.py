"""The `strongroom` command: thin click functions over the service layer."""
import os
import sys
from typing import Any

import click

from strongroom.appliance.cli import (acl, audit, backup, clients, daemon, doctor, folders, keys,
                                      libraries, locks, maintenance, notify, trash, unlock,
                                      user_notify, users, versions)
from strongroom.appliance.cli.options import close_apps, fail, passphrase_file_option
from strongroom.appliance.cli.status import status


class _Group(click.Group):
    """Turns expected errors into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:   # whatever the command returns
        from strongroom.appliance.errors import StrongroomError
        from strongroom.config import ConfigError
        from strongroom.providers.errors import StorageError
        from sqlalchemy.exc import IntegrityError
        try:
            try:
                return super().invoke(ctx)
            finally:
                close_apps()
        except (StrongroomError, ConfigError, StorageError) as e:
            fail(str(e))
        except IntegrityError:
            # the database's own uniqueness, when another process made the same name
            # between this command's check and its commit
            fail("another change made the same name or entry at the same moment; "
                 "nothing was changed by this command: look, then try again")
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise                   # click's own: usage errors, --help, exits
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:
            # the reader went away (`strongroom audit list | head`): stop quietly, as
            # other commands in a pipe do; stdout is pointed at /dev/null so that the
            # interpreter's last flush cannot fail again on the way out
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except Exception as e:      # a bug: still one line, the traceback on request
            if os.environ.get("STRONGROOM_DEBUG"):
                raise
            fail(f"unexpected {type(e).__name__}: {' '.join(str(e).split())[:300]} "
                 "(STRONGROOM_DEBUG=1 shows where)")


def _print_version(ctx: click.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from strongroom.appliance.version import installed
        click.echo(f"strongroom, version {installed()}")
        ctx.exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda ctx, _p, value: _print_version(ctx, value),
              help="Show the version (and the source commit it was installed from) and exit.")
@passphrase_file_option
def main() -> None:
    """Strongroom: encrypted, versioned client file exchange over WebDAV and SFTP."""
    os.umask(0o077)  # keys, database and blobs are for the appliance's user only


main.add_command(daemon.init)
main.add_command(daemon.serve)
main.add_command(clients.client)
main.add_command(users.user)
users.user.add_command(user_notify.notify)
main.add_command(versions.versions)
main.add_command(trash.trash)
main.add_command(acl.acl)
main.add_command(libraries.library)
main.add_command(folders.folder)
main.add_command(doctor.doctor)
main.add_command(maintenance.maintenance)
main.add_command(audit.audit)
main.add_command(locks.locks)
main.add_command(notify.notify)
main.add_command(status)
main.add_command(backup.backup)
main.add_command(backup.restore)
main.add_command(keys.keys)
main.add_command(unlock.unlock)
# these add their commands to the keys group
from strongroom.appliance.cli import keys_move, keys_recovery, keys_rotate  # noqa: E402,F401
