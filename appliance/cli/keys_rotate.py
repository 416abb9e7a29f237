"""`strongroom keys status|rotate-master|rotate-client` (appliance.service.keys_status,
appliance.service.keys_rotation), added to the `keys` group (keys.py)."""
from collections.abc import Iterator
from pathlib import Path

import click

from strongroom.appliance.cli.keys import keys
from strongroom.appliance.cli.options import Json, data_dir_option, emit, json_option, open_app
from strongroom.appliance.cli.progress import Progress

__all__ = ["keys"]

_batch_option = click.option("--batch", type=click.IntRange(min=1), default=500, hidden=True,
                             help="Keys rewrapped per transaction.")


@keys.command("status", epilog="Example: strongroom keys status --json")
@data_dir_option
@json_option
def status(data_dir: Path, as_json: bool) -> None:
    """Key ids: the master key and where it comes from, how many keys each master key
    wraps, each client's key and how many data keys it wraps, rotations in progress."""
    from strongroom.appliance.service.keys_status import status as key_status
    emit(key_status(open_app(data_dir)), as_json, _status)


def _status(d: Json) -> Iterator[str]:
    yield f"master key {d['master_key_id']} ({d['source']}, holding {d['source_key_id']})"
    for key_id, n in sorted(d["wrapped_by_master"].items()):
        yield f"  master key {key_id} wraps {n} keys"
    for c in d["clients"]:
        counts = ", ".join(f"{k}: {n} data keys" for k, n in c["data_keys"].items())
        yield f"client {c['name']}: key {c['key_id']} ({counts})"
    yield from d["rotations"] or ["no rotation in progress"]


@keys.command("rotate-master", epilog="Example: strongroom keys rotate-master --json")
@click.option("--new-key-to", "new_key_to", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the new master key when its source cannot be written "
                   "by us (a systemd credential): a new file, mode 0600.")
@_batch_option
@data_dir_option
@json_option
def rotate_master(new_key_to: Path | None, batch: int, data_dir: Path, as_json: bool) -> None:
    """A new master key, while the daemon serves: every client key is rewrapped in
    batches, and the old master key is forgotten once nothing refers to it. Derived
    keys (audit chain, drive sessions, invitations, backups) stay as they are.
    Interrupted, run it again: it resumes. Audited."""
    from strongroom.appliance.service.keys_rotation import MasterRotation
    app = open_app(data_dir)
    with Progress("rotate-master", unit="items") as meter:
        out = MasterRotation(app, batch=batch, meter=meter).run(new_key_to)
    emit(out, as_json, _rotated_master)


def _rotated_master(d: Json) -> list[str]:
    return [f"master key {d['old_key_id']} -> {d['new_key_id']}: {d['rewrapped']} client "
            f"keys rewrapped; the new key is in {d['source']}"
            if d["pending"] is None else
            f"master key {d['old_key_id']} -> {d['new_key_id']}: {d['rewrapped']} client "
            f"keys rewrapped; {d['pending']}"]


@keys.command("rotate-client", epilog="Example: strongroom keys rotate-client acme")
@click.argument("name")
@_batch_option
@data_dir_option
@json_option
def rotate_client(name: str, batch: int, data_dir: Path, as_json: bool) -> None:
    """A new key for client (or library) NAME, while the daemon serves: every data key
    of the client is rewrapped in batches (no file content is re-encrypted). Digests
    and ETags stay the same. Interrupted, run it again: it resumes. Audited."""
    from strongroom.appliance.service.keys_rotation import ClientRotation
    app = open_app(data_dir)
    with Progress(f"rotate-client {name}", unit="items") as meter:
        out = ClientRotation(app, batch=batch, meter=meter).run(name)
    emit(out, as_json, lambda d: [f"client {d['client']}: key {d['old_key_id']} -> "
                                  f"{d['new_key_id']}: {d['rewrapped']} data keys rewrapped"])
