"""The SFTP operations, each a call into the Session. Errors propagate as domain
exceptions and are turned into SFTP statuses in one place (subsystem.py)."""
import os
import stat as statmod
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from paramiko import SFTPAttributes, SFTPHandle, SFTPServerInterface
from paramiko.sftp import SFTP_OK

from strongroom.appliance.errors import Conflict, NotFound, Unsupported
from strongroom.appliance.service import paths
from strongroom.appliance.service.entry import Entry

if TYPE_CHECKING:
    from strongroom.appliance.sftp.sshauth import SSHServer

FILE_MODE = statmod.S_IFREG | 0o644
DIR_MODE = statmod.S_IFDIR | 0o755


class OpenVersion(Protocol):
    """What this adapter uses of Session.open_read's handle."""
    entry: Entry

    def read(self, offset: int, size: int) -> bytes: ...

    def close(self) -> None: ...


class Upload(Protocol):
    """What this adapter uses of Session.open_write's upload."""
    mtime: float | None

    @property
    def size(self) -> int: ...

    def write(self, offset: int, data: bytes | memoryview) -> None: ...

    def commit(self) -> object: ...

    def abort(self) -> None: ...

    def cancel(self) -> None: ...


def attributes(entry: Entry) -> SFTPAttributes:
    attr = SFTPAttributes()
    attr.filename = entry.name or "/"
    attr.st_size = entry.size
    attr.st_mode = DIR_MODE if entry.is_dir else FILE_MODE
    attr.st_uid = attr.st_gid = 0
    # SFTP v3 carries times as 32-bit unsigned seconds (up to 2106)
    attr.st_mtime = attr.st_atime = max(0, min(int(entry.mtime), 0xFFFFFFFF))
    return attr


class ListedAttributes(SFTPAttributes):
    """A directory entry whose `ls -l` longname names owner and group as OpenSSH's does
    (FileZilla and WinSCP parse it): the user's login and client."""

    owner = group = "-"
    st_mode: int     # always set (listed)
    st_size: int

    def __str__(self) -> str:
        kind = "d" if statmod.S_ISDIR(self.st_mode) else "-"
        perms = statmod.filemode(self.st_mode)[1:]
        when = time.localtime(self.st_mtime or 0)
        recent = abs(time.time() - (self.st_mtime or 0)) < 15_552_000  # six months
        date = time.strftime("%b %e %H:%M" if recent else "%b %e  %Y", when)
        return (f"{kind}{perms}    1 {self.owner[:8]:<8} {self.group[:8]:<8} "
                f"{self.st_size:>8} {date} {self.filename}")


def listed(entry: Entry, owner: str, group: str) -> ListedAttributes:
    attr = ListedAttributes()
    attr.__dict__.update(attributes(entry).__dict__)
    attr.owner, attr.group = owner, group
    return attr


class Handle(SFTPHandle):
    """An open file: paramiko closes it on CLOSE; the subsystem aborts it when the
    session ends without one."""

    def abort(self) -> None:
        raise NotImplementedError


class SftpReadHandle(Handle):
    """paramiko's handle of a file open for reading, over the service's ReadHandle."""

    def __init__(self, handle: OpenVersion):
        super().__init__()
        self._h = handle

    def read(self, offset: int, length: int) -> bytes:
        return self._h.read(offset, length)

    def stat(self) -> SFTPAttributes:
        return attributes(self._h.entry)

    def chattr(self, attr: SFTPAttributes) -> int:
        return SFTP_OK

    def close(self) -> None:
        self._h.close()

    abort = close


class WriteHandle(Handle):
    """An upload: committed on a clean CLOSE, aborted if the session ends first."""

    def __init__(self, upload: Upload, entry_name: str,
                 on_end: Callable[["WriteHandle"], None] | None = None):
        super().__init__()
        self._u = upload
        self._name = entry_name
        self._on_end = on_end

    def write(self, offset: int, data: bytes | memoryview) -> int:  # type: ignore[override]
        # (paramiko's stub promises any buffer; the subsystem passes a memoryview)
        self._u.write(offset, data)
        return SFTP_OK

    def read(self, offset: int, length: int) -> bytes:
        raise Unsupported("this handle was opened for writing")

    def stat(self) -> SFTPAttributes:
        attr = SFTPAttributes()
        attr.filename, attr.st_size, attr.st_mode = self._name, self._u.size, FILE_MODE
        attr.st_mtime = attr.st_atime = int(self._u.mtime or time.time())
        return attr

    def chattr(self, attr: SFTPAttributes) -> int:
        if attr.st_mtime is not None:
            self._u.mtime = float(attr.st_mtime)
        if attr.st_size is not None and attr.st_size != self._u.size:
            raise Unsupported("changing the size of an open upload is not supported")
        return SFTP_OK

    def close(self) -> None:
        try:
            self._u.commit()
        finally:
            self._ended()

    def abort(self) -> None:
        try:
            self._u.abort()
        finally:
            self._ended()

    def _ended(self) -> None:
        if self._on_end is not None:
            self._on_end(self)
            self._on_end = None


class OpenUploads:
    """The uploads one connection has open, on any of its channels. When the
    connection ends they are cancelled at once, from the transport's thread: the
    SFTP thread may be busy inside a long write (copying a large previous version)
    and would see the end only after it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[Upload] = set()
        self._ended = False

    def add(self, upload: Upload) -> None:
        with self._lock:
            self._open.add(upload)
            ended = self._ended
        if ended:
            upload.cancel()

    def discard(self, upload: Upload) -> None:
        with self._lock:
            self._open.discard(upload)

    def cancel_all(self) -> None:
        with self._lock:
            self._ended = True
            uploads = list(self._open)
        for upload in uploads:
            upload.cancel()


class Handler(SFTPServerInterface):
    """Built per SFTP channel by paramiko; `server` is our ServerInterface with the session."""

    def __init__(self, server: "SSHServer", *args: object, **kwargs: object):
        super().__init__(server, *args, **kwargs)
        assert server.session is not None   # paramiko opens channels only after login
        self.session = server.session
        self._open = server.uploads
        # Uploads this channel has open, by clean path. Their owner may stat them
        # (sshfs checks a file right after creating it); other sessions see only
        # committed versions.
        self._uploads: dict[str, WriteHandle] = {}

    def list_folder(self, path: str) -> list[SFTPAttributes]:
        p = self.session.principal
        owner, group = p.login, self.session.own_tree() if p.client_id else p.role
        return [listed(e, owner, group) for e in self.session.list(path)]

    def stat(self, path: str) -> SFTPAttributes:
        handle = self._uploads.get(paths.join(paths.clean(path)))
        if handle is not None:
            return handle.stat()
        return attributes(self.session.stat(path))

    lstat = stat

    def open(self, path: str, flags: int, attr: SFTPAttributes | None) -> Handle:
        if not flags & (os.O_WRONLY | os.O_RDWR):
            return SftpReadHandle(self.session.open_read(path))
        return self._open_write(path, flags, attr)

    def _open_write(self, path: str, flags: int, attr: SFTPAttributes | None) -> WriteHandle:
        # Plain O_CREAT (what uploads send) accepts either case: no lookup needed,
        # and truncate does not matter for a file that does not exist yet.
        if flags & (os.O_CREAT | os.O_EXCL) != os.O_CREAT:
            try:
                existing = self.session.stat(path)
            except NotFound:
                existing = None
            if existing is None and not flags & os.O_CREAT:
                raise NotFound(f"no such file: {path}")
            if existing is not None and flags & os.O_CREAT and flags & os.O_EXCL:
                raise Conflict(f"already exists: {path}")
        upload = self.session.open_write(path, truncate=bool(flags & os.O_TRUNC))
        if attr is not None and attr.st_mtime is not None:
            upload.mtime = float(attr.st_mtime)
        key = paths.join(paths.clean(path))
        handle = WriteHandle(upload, key.rsplit("/", 1)[-1] or "/",
                             lambda h: self._ended(key, h, upload))
        self._uploads[key] = handle
        self._open.add(upload)
        return handle

    def _ended(self, key: str, handle: WriteHandle, upload: Upload) -> None:
        self._open.discard(upload)
        if self._uploads.get(key) is handle:
            del self._uploads[key]

    def remove(self, path: str) -> int:
        self.session.remove(path, dirs=False)
        return SFTP_OK

    def rename(self, oldpath: str, newpath: str) -> int:
        self.session.rename(oldpath, newpath, overwrite=False)
        return SFTP_OK

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        self.session.rename(oldpath, newpath, overwrite=True)
        return SFTP_OK

    def mkdir(self, path: str, attr: SFTPAttributes) -> int:
        self.session.mkdir(path)
        return SFTP_OK

    def rmdir(self, path: str) -> int:
        self.session.remove(path, files=False)
        return SFTP_OK

    def chattr(self, path: str, attr: SFTPAttributes) -> int:
        if attr.st_size is not None and attr.st_size != self.session.stat(path).size:
            # a version is written whole: truncating one in place would be a new
            # version made of part of another (open it with O_TRUNC instead)
            raise Unsupported("changing the size of a file is not supported")
        if attr.st_mtime is not None:
            self.session.set_mtime(path, float(attr.st_mtime))
        else:
            self.session.stat(path)  # unknown attributes are accepted on existing paths
        return SFTP_OK

    def canonicalize(self, path: str) -> str:
        return paths.join(paths.clean(path))

    def readlink(self, path: str) -> str:
        raise Unsupported("there are no symbolic links here")

    def symlink(self, target_path: str, path: str) -> int:
        raise Unsupported("links are not supported: they could lead outside your tree")
