"""`strongroom backup create|verify` and `strongroom restore` (appliance.service.backup,
appliance.service.backup_restore)."""
from pathlib import Path

import click

from strongroom.appliance.cli.keys_recovery import (recovery_passphrase,
                                                    recovery_passphrase_option)
from strongroom.appliance.cli.options import (Json, cli_admin_name, data_dir_option, emit, fail,
                                              human_size, json_option, open_app, passphrase_asker)


@click.group("backup")
def backup() -> None:
    """Consistent copies of a serving appliance, and checking them."""


@backup.command("create", epilog="Example: strongroom backup create /srv/backup/strongroom")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@data_dir_option
@json_option
def create(dest: Path, data_dir: Path, as_json: bool) -> None:
    """Back up the appliance into the folder DEST, while it serves: the database as of
    one instant, the blobs its versions name (only those not in DEST yet), the config,
    the TLS certificate and SSH host keys (private keys encrypted under the master
    key). The master key is not in the backup: keep it apart. Audited."""
    from strongroom.appliance.service.backup import create_backup
    out = create_backup(open_app(data_dir), dest)
    emit(out, as_json, _created)


def _created(d: Json) -> list[str]:
    return [f"backed up to {d['dest']} (snapshot {d['snapshot']}, revision {d['revision']}): "
            f"{sum(d['rows'].values())} rows, {d['blobs']} blobs "
            f"({human_size(d['blob_bytes'])}): {d['copied']} copied, "
            f"{d['already_present']} already present"
            + (f", {d['pruned']} no longer named removed" if d["pruned"] else ""),
            d["note"]]


@backup.command("verify", epilog="Example: strongroom backup verify /srv/backup/strongroom "
                                 "--master-key /var/lib/strongroom/master.key")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--master-key", "master_key", type=click.Path(dir_okay=False, path_type=Path),
              help="The appliance's master key: every chunk of every version is then "
                   "authenticated. Without it (or --data-dir), only presence and sizes "
                   "are checked.")
@click.option("--data-dir", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="An appliance's data directory whose master key authenticates every "
                   "chunk (on the appliance the backup was made from).")
@json_option
def verify(dest: Path, master_key: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Check the backup in DEST: its table files are unchanged and every blob it lists
    is there with its size; with --master-key or --data-dir, every chunk
    authenticates. Exit 1 on any problem, each named."""
    from strongroom.appliance.service.backup_restore import verify_backup
    key: Path | bytes | None = master_key
    if master_key is None and data_dir is not None:
        # through [keys] master_key_source: a key off the disk, a credential, a passphrase
        from strongroom import config as configmod
        from strongroom.appliance import keysource
        key = keysource.from_config(configmod.load(data_dir.resolve()),
                                    passphrase_asker()).load()
    out = verify_backup(dest, key)
    emit(out, as_json, _verified)
    if out["problems"]:
        fail(f"the backup in {out['backup']} has {len(out['problems'])} problems")


def _verified(d: Json) -> list[str]:
    how = ("the manifest and every chunk authenticated" if d["authenticated"]
           else "with the master key" if d["keyed"]
           else "presence and sizes only; the manifest was not authenticated (--master-key "
                "or --data-dir authenticates it and every chunk)")
    lines = [f"{d['backup']} (made {d['created_at']}): {d['blobs']} blobs, "
             f"{human_size(d['blob_bytes'])}; checked: {how}"]
    return lines + [f"problem: {p}" for p in d["problems"]]


@click.command("restore", epilog="Examples:\n\n\b\n"
                                 "  strongroom restore /srv/backup/strongroom "
                                 "--data-dir /var/lib/strongroom-new --master-key master.key\n"
                                 "  strongroom restore /srv/backup/strongroom "
                                 "--data-dir /var/lib/strongroom-new --recovery recovery.key")
@click.argument("src", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data-dir", "data_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="The NEW data directory to build (missing or empty).")
@click.option("--master-key", "master_key", type=click.Path(dir_okay=False, path_type=Path),
              help="The master key file of the appliance the backup was made from.")
@click.option("--recovery", "recovery", type=click.Path(dir_okay=False, path_type=Path),
              help="Its recovery key (strongroom keys export-recovery) instead; the "
                   "passphrase is asked, or read from --passphrase-file.")
@recovery_passphrase_option
@click.option("--database-url", "database_url", metavar="URL",
              help="Load into this (empty) database, e.g. postgresql+psycopg2://...; "
                   "default: SQLite in the new data directory.")
@json_option
def restore(src: Path, data_dir: Path, master_key: Path | None, recovery: Path | None,
            passphrase_file: Path | None, database_url: str | None, as_json: bool) -> None:
    """Build a new data directory from the backup in SRC: the same tree, versions,
    trash, users, keys and ports; the master key from --master-key FILE or --recovery
    FILE (exactly one). Refuses a non-empty directory or database; a failed restore
    leaves nothing behind. Audited in the restored appliance."""
    from strongroom.appliance.service.backup_restore import restore_backup
    out = restore_backup(src, data_dir, _restore_key(master_key, recovery, passphrase_file),
                         database_url, actor=cli_admin_name())
    emit(out, as_json, lambda d: [
        f"restored {d['from']} into {d['data_dir']} ({d['database']}, revision "
        f"{d['revision']}): {sum(d['rows'].values())} rows, {d['blobs']} blobs; "
        f"start it with: strongroom serve --data-dir {d['data_dir']}"] + ([
        f"the backup's master key source ({d['key_source_was']}) is not carried over: the "
        f"restored appliance reads its key from {d['data_dir']}/master.key; move it off the "
        "disk with: strongroom keys move SOURCE"]
        if d["key_source_was"] else []))


def _restore_key(master_key: Path | None, recovery: Path | None,
                 passphrase_file: Path | None) -> Path | bytes:
    """The master key file, or the key opened from the recovery file."""
    if (master_key is None) == (recovery is None):
        fail("give exactly one of --master-key FILE and --recovery FILE")
    if recovery is None:
        assert master_key is not None
        if not master_key.is_file():
            fail(f"--master-key {master_key}: no such file")
        return master_key
    from strongroom.appliance.service.recovery import recovered_key
    return recovered_key(recovery, recovery_passphrase(passphrase_file, new=False))
