"""Commands run as the owner of the data directory, and say who ran them.

Files an admin command writes (blobs and their folders, the database's journal,
the audit anchor) must stay readable for the daemon, which runs as the data
directory's owner: a command started as root runs again as that user (setpriv,
before it opens anything: a new process, because modules imported later must
come from where that user can read them); any other user is told how to run it.
"""
import os
import pwd
import shutil
import sys
from pathlib import Path

INVOKER = "STRONGROOM_CLI_INVOKER"   # who ran the command, carried across the switch

def invoker() -> str:
    """The person running the command: SUDO_USER under sudo, else the OS user
    (as it was before the switch to the owner)."""
    name = os.environ.get(INVOKER) or (os.environ.get("SUDO_USER")
                                       if os.getuid() == 0 else None)
    return name or _name(os.getuid())


def become_owner(data_dir: Path) -> None:
    try:
        st = os.stat(data_dir)
    except OSError:
        return       # made by this command (init), or reported when it is opened
    if st.st_uid == os.geteuid():
        return
    owner = _name(st.st_uid)
    if os.geteuid() != 0:
        from strongroom.appliance.errors import Denied
        raise Denied(f"{data_dir} belongs to user {owner}: run the command as that user, "
                     f"e.g. sudo -u {owner} strongroom ...")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        from strongroom.appliance.errors import Denied
        raise Denied(f"{data_dir} belongs to user {owner}: run the command as that user, "
                     f"e.g. sudo -u {owner} strongroom ...")
    groups = "--init-groups" if owner != str(st.st_uid) else "--clear-groups"
    os.environ[INVOKER] = invoker()
    sys.stdout.flush()
    os.execv(setpriv, [setpriv, f"--reuid={st.st_uid}", f"--regid={st.st_gid}", groups,
                       "--", *sys.orig_argv])


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
