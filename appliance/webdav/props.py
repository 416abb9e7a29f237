"""wsgidav's property-manager interface over the Session's dead properties."""
from typing import TYPE_CHECKING
from urllib.parse import unquote
from wsgiref.types import WSGIEnvironment

from strongroom.appliance.errors import NotFound
from strongroom.appliance.webdav.errors import boundary

if TYPE_CHECKING:
    from strongroom.appliance.service import Session


def _session(environ: WSGIEnvironment | None) -> "Session":
    """The request's session (wsgidav passes the environ to every call it makes)."""
    assert environ is not None, "wsgidav calls the property manager with the environ"
    session: Session = environ["strongroom.session"]
    return session


def _members_of_listing(path: str, environ: WSGIEnvironment | None) -> \
        dict[str, dict[str, str]] | None:
    """In a Depth-1 PROPFIND, the dead properties of the listed folder's members (one
    query for all, remembered for the request); None for any other request or path."""
    if environ is None or environ.get("REQUEST_METHOD") != "PROPFIND" or \
            environ.get("HTTP_DEPTH") != "1":
        return None
    folder = unquote(environ.get("PATH_INFO", "")).rstrip("/")
    if path.rstrip("/").rsplit("/", 1)[0] != folder or path.rstrip("/") == folder:
        return None
    # the read-only views keep their own rules (a deleted item keeps its properties),
    # and staff's top level lists trees: those members are asked for one by one
    if "/@versions" in folder or "/@trash" in folder or \
            (not folder and _session(environ).principal.sees_all_clients):
        return None
    memo: dict[str, dict[str, dict[str, str]]] = environ.setdefault("strongroom.props", {})
    if folder not in memo:
        try:
            memo[folder] = _session(environ).dead_properties_of_members(folder or "/")
        except NotFound:
            memo[folder] = {}
    return memo[folder]


@boundary(lambda manager, url=None, *_: url)
class PropertyManager:
    def __repr__(self) -> str:
        return "PropertyManager(database)"

    def get_properties(self, norm_url: str,
                       environ: WSGIEnvironment | None = None) -> list[str]:
        return list(self._all(norm_url, environ))

    def get_property(self, norm_url: str, name: str,
                     environ: WSGIEnvironment | None = None) -> str | None:
        return self._all(norm_url, environ).get(name)

    def _all(self, norm_url: str, environ: WSGIEnvironment | None) -> dict[str, str]:
        path = unquote(norm_url)
        members = _members_of_listing(path, environ)
        if members is not None:
            # one left out has none, or is a file the principal may not read: asked
            # for alone, that one is refused as NotFound, which also answers {}
            return members.get(path.rstrip("/").rsplit("/", 1)[-1], {})
        try:
            return _session(environ).dead_properties(path)
        except NotFound:
            return {}

    def write_property(self, norm_url: str, name: str, property_value: str | bytes,
                       dry_run: bool = False, environ: WSGIEnvironment | None = None) -> None:
        if dry_run:
            return
        value = property_value.decode("utf-8") if isinstance(property_value, bytes) \
            else property_value
        _session(environ).set_dead_property(unquote(norm_url), name, value)

    def remove_property(self, norm_url: str, name: str, dry_run: bool = False,
                        environ: WSGIEnvironment | None = None) -> None:
        if dry_run:
            return
        _session(environ).set_dead_property(unquote(norm_url), name, None)

    def remove_properties(self, norm_url: str, environ: WSGIEnvironment | None = None) -> None:
        pass  # properties stay with the node in the trash, restorable with it

    def copy_properties(self, src_url: str, dest_url: str,
                        environ: WSGIEnvironment | None = None) -> None:
        _session(environ).copy_dead_properties(unquote(src_url), unquote(dest_url))

    def move_properties(self, src_url: str, dest_url: str, with_children: bool,
                        environ: WSGIEnvironment | None = None) -> None:
        pass  # properties belong to the node, which the move carried along
