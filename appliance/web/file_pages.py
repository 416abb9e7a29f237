"""The portal's files: folder pages, an item's page (versions, rename, delete), the
trash, and the forms that change them. Each handler is one or two Session calls.
Downloads, the folder zip and uploads are in transfer_pages."""
import posixpath
from typing import TYPE_CHECKING

from strongroom.appliance.errors import BadRequest, Conflict
from strongroom.appliance.service.entry import Entry
from strongroom.appliance.web.http import Response, redirect, url
from strongroom.appliance.web.portal import Context

if TYPE_CHECKING:
    from strongroom.appliance.web.portal import Portal

VIEWS = ("@versions", "@trash")
MAX_TRASH_ITEMS = 2000       # a trash page shows at most this many items
SORTS = {"name": lambda e: (not e.is_dir, e.name.casefold()),
         "size": lambda e: (not e.is_dir, e.size, e.name.casefold()),
         "modified": lambda e: (not e.is_dir, e.mtime, e.name.casefold())}


def register(portal: "Portal") -> None:
    from strongroom.appliance.web import transfer_pages
    transfer_pages.register(portal)

    @portal.route("GET", "/files")
    def folder(ctx: Context) -> Response:
        path = _path(ctx)
        entries = [e for e in ctx.session.list(path) if not _is_view(ctx, e)]
        sort = ctx.request.query.get("sort", "name")
        sort = sort if sort in SORTS else "name"
        order = "desc" if ctx.request.query.get("order") == "desc" else "asc"
        entries.sort(key=SORTS[sort], reverse=order == "desc")
        if order == "desc":   # folders first either way
            entries.sort(key=lambda e: not e.is_dir)
        return ctx.page("files.html", path=path, title=_title(ctx, path), crumbs=_crumbs(ctx, path),
                        entries=entries, sort=sort, order=order,
                        writable=path != "/" or not ctx.session.principal.sees_all_clients,
                        columns=[("name", ctx.gettext("Name")), ("size", ctx.gettext("Size")),
                                 ("modified", ctx.gettext("Modified"))])

    @portal.route("GET", "/item")
    def item(ctx: Context) -> Response:
        path = _path(ctx)
        entry = ctx.session.stat(path)
        versions = [] if entry.is_dir else ctx.session.versions(path)
        return ctx.page("item.html", entry=entry, parent=posixpath.dirname(path) or "/",
                        versions=list(reversed(versions)), writable=True)

    @portal.route("POST", "/mkdir")
    def mkdir(ctx: Context) -> Response:
        path = _path(ctx)
        name = _name(ctx.request.form().get("name", ""))
        ctx.session.mkdir(posixpath.join(path, name))
        return redirect(url("/files", p=path))

    @portal.route("POST", "/rename")
    def rename(ctx: Context) -> Response:
        path = _path(ctx)
        to = ctx.request.form().get("to", "").strip()
        if not to.startswith("/"):
            to = posixpath.join(posixpath.dirname(path), _name(to))
        ctx.session.rename(path, to)
        return redirect(url("/files", p=posixpath.dirname(to.rstrip("/")) or "/"))

    @portal.route("POST", "/delete")
    def delete(ctx: Context) -> Response:
        path = _path(ctx)
        ctx.session.remove(path, recursive=True)
        return redirect(url("/files", p=posixpath.dirname(path) or "/"))

    @portal.route("POST", "/restore")
    def restore(ctx: Context) -> Response:
        path = _path(ctx)
        version = ctx.request.form().get("version", "")
        if not version.isdigit() or len(version) > 18:
            raise BadRequest("no such version")
        ctx.session.restore(path, int(version))
        return redirect(url("/item", p=path))

    @portal.route("GET", "/trash")
    def trash(ctx: Context) -> Response:
        groups = [(tree if tree != "/" else "", _trash_items(ctx, tree))
                  for tree in _trees(ctx)]
        return ctx.page("trash.html", groups=groups)

    @portal.route("POST", "/untrash")
    def untrash(ctx: Context) -> Response:
        path = _path(ctx)
        entry = ctx.session.stat(path)
        if not entry.deleted or not entry.origin:
            raise BadRequest("not an item of the trash")
        ctx.session.copy(path, entry.origin)
        target = posixpath.dirname(entry.origin) or "/"
        return redirect(url("/files", p=target))


def _path(ctx: Context) -> str:
    """The `p` of the query: a full path of the user's view ('/' when absent)."""
    path = ctx.request.query.get("p", "/") or "/"
    if not path.startswith("/") or "\0" in path or len(path) > 4096:
        raise BadRequest("not a path")
    return path


def _name(name: str) -> str:
    """A new file or folder name typed or uploaded: one name, never a path."""
    name = name.strip()
    if (not name or name in (".", "..") or any(c in name for c in "/\\\0")
            or len(name.encode()) > 255):
        raise BadRequest(f"not a valid name: {name!r}")
    return name


def _is_view(ctx: Context, entry: Entry) -> bool:
    """`@versions` and `@trash` at the top of a tree: the portal has pages for them."""
    parent = posixpath.dirname(entry.path)
    return entry.name in VIEWS and (parent == "/" or (
        ctx.session.principal.sees_all_clients and parent.count("/") == 1))


def _title(ctx: Context, path: str) -> str:
    return posixpath.basename(path) or ctx.gettext("My files")


def _crumbs(ctx: Context, path: str) -> list[tuple[str, str]]:
    out = [(ctx.gettext("My files"), "/")]
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        out.append((part, "/" + "/".join(parts[:i + 1])))
    return out


def _trees(ctx: Context) -> list[str]:
    """The tree roots whose trash the user sees: '/' for a client user, each client's
    folder for staff."""
    if not ctx.session.principal.sees_all_clients:
        return ["/"]
    return [e.path for e in ctx.session.list("/") if e.is_dir]


class TrashItem:
    def __init__(self, entry: Entry) -> None:
        self.path = entry.path
        self.deleted_at = entry.deleted_at
        self.origin = entry.origin or ""
        self.label = posixpath.basename(self.origin) or entry.name
        self.origin_folder = posixpath.dirname(self.origin) or "/"


def _trash_items(ctx: Context, tree: str) -> list[TrashItem]:
    """Deleted items of one tree, newest first, walking the `@trash` view's folders."""
    items: list[TrashItem] = []
    todo = [posixpath.join(tree, "@trash")]
    while todo and len(items) < MAX_TRASH_ITEMS:
        try:
            listing = ctx.session.list(todo.pop())
        except Conflict:
            continue
        for e in listing:
            if e.deleted:
                items.append(TrashItem(e))
            elif e.is_dir:
                todo.append(e.path)
    return sorted(items, key=lambda i: -(i.deleted_at or 0))
