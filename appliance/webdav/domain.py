"""Authentication for wsgidav: Basic credentials checked by the service layer's login."""
import threading

from wsgidav.dc.base_dc import BaseDomainController

from strongroom.appliance.errors import AuthFailed
from strongroom.appliance.webdav.listener import mark_authenticated

REALM = "Strongroom"

# The session of the request this thread is serving; lock storage reads it to
# translate the user's paths into canonical ones (wsgidav passes no environ there).
current = threading.local()


def client_address(environ) -> str:
    return environ.get("REMOTE_ADDR", "?")


class DomainController(BaseDomainController):
    def __init__(self, wsgidav_app, config):
        super().__init__(wsgidav_app, config)
        self.app = config["strongroom_app"]

    def get_domain_realm(self, path_info, environ):
        return REALM

    def require_authentication(self, realm, environ):
        return True

    def supports_http_digest_auth(self):
        return False  # digest would need the plain password; we store argon2id hashes

    def basic_auth_user(self, realm, user_name, password, environ):
        address = client_address(environ)
        try:
            principal = self.app.auth.password_login(user_name, password, "webdav", address)
        except AuthFailed:   # logged, with the reason, by the authenticator
            current.session = None
            return False
        session = self.app.session(principal, "webdav", address, per_request=True)
        environ["strongroom.session"] = session
        current.session, current.dav_locks = session, None
        mark_authenticated()
        return True
