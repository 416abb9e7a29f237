"""The DAV tree: wsgidav's DAVProvider (a name it uses for the tree it serves, not
to be confused with our storage provider), mapping a request path to a resource
via the Session."""
from wsgidav.dav_provider import DAVProvider

from strongroom.appliance.errors import NotFound
from strongroom.appliance.webdav.errors import boundary
from strongroom.appliance.webdav.resources import make_resource


@boundary(lambda tree, path=None, *_: path)
class DavTree(DAVProvider):
    def is_readonly(self):
        return False

    def get_resource_inst(self, path, environ):
        if path is None:      # wsgidav's parent of the top folder
            return None
        try:
            entry = environ["strongroom.session"].stat(path)
        except NotFound:
            return None
        return make_resource(path, environ, entry)
