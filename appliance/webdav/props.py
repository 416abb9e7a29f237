"""wsgidav's property-manager interface over the Session's dead properties."""
from urllib.parse import unquote

from strongroom.appliance.errors import NotFound
from strongroom.appliance.webdav.errors import boundary


def _session(environ):
    return environ["strongroom.session"]


@boundary(lambda manager, url=None, *_: url)
class PropertyManager:
    def __repr__(self):
        return "PropertyManager(database)"

    def get_properties(self, norm_url, environ=None):
        return list(self._all(norm_url, environ))

    def get_property(self, norm_url, name, environ=None):
        return self._all(norm_url, environ).get(name)

    def _all(self, norm_url, environ):
        try:
            return _session(environ).dead_properties(unquote(norm_url))
        except NotFound:
            return {}

    def write_property(self, norm_url, name, property_value, dry_run=False, environ=None):
        if dry_run:
            return
        value = property_value.decode("utf-8") if isinstance(property_value, bytes) \
            else property_value
        _session(environ).set_dead_property(unquote(norm_url), name, value)

    def remove_property(self, norm_url, name, dry_run=False, environ=None):
        if dry_run:
            return
        _session(environ).set_dead_property(unquote(norm_url), name, None)

    def remove_properties(self, norm_url, environ=None):
        pass  # properties stay with the node in the trash, restorable with it

    def copy_properties(self, src_url, dest_url, environ=None):
        _session(environ).copy_dead_properties(unquote(src_url), unquote(dest_url))

    def move_properties(self, src_url, dest_url, with_children, environ=None):
        pass  # properties belong to the node, which the move carried along
