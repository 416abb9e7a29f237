"""`strongroom keys ...`: the master key, client keys, rotation and the recovery key.

The group is declared here; its commands live in keys_rotate.py (status, rotate-master,
rotate-client) and keys_recovery.py (export-recovery, import-recovery), each adding
itself to this group.
"""
import click


@click.group()
def keys() -> None:
    """Key ids, key rotation while the daemon serves, and the recovery key.

    \b
    Examples:
      strongroom keys status --json
      strongroom keys rotate-master
      strongroom keys rotate-client acme
      strongroom keys export-recovery --to /media/safe/strongroom-recovery.key
    """
