"""The DAV tree: wsgidav's DAVProvider (a name it uses for the tree it serves, not
to be confused with our storage provider), mapping a request path to a resource
via the Session."""
from wsgiref.types import WSGIEnvironment

from wsgidav.dav_provider import DAVProvider

from strongroom.appliance.errors import NotFound
from strongroom.appliance.webdav.errors import boundary
from strongroom.appliance.webdav.resources import FileResource, FolderResource, make_resource


# wsgidav ships no types: DAVProvider is Any to mypy.
@boundary(lambda tree, path=None, *_: path)
class DavTree(DAVProvider):  # type: ignore[misc]
    def is_readonly(self) -> bool:
        return False

    def get_resource_inst(self, path: str | None,
                          environ: WSGIEnvironment) -> FileResource | FolderResource | None:
        if path is None:      # wsgidav's parent of the top folder
            return None
        try:
            entry = environ["strongroom.session"].stat(path)
        except NotFound:
            return None
        return make_resource(path, environ, entry)
