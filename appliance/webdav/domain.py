"""Authentication for wsgidav: Basic credentials checked by the service layer's login."""
import threading
from typing import TYPE_CHECKING, Any
from wsgiref.types import WSGIEnvironment

from wsgidav.dc.base_dc import BaseDomainController

from strongroom.appliance.errors import AuthFailed
from strongroom.appliance.webdav.listener import mark_authenticated

if TYPE_CHECKING:
    from strongroom.appliance.app import App
    from strongroom.appliance.service import Session

REALM = "Strongroom"



class _Current(threading.local):
    """What this thread's request has so far: its session (lock storage reads it to
    translate the user's paths into canonical ones: wsgidav passes no environ there),
    the locks it read (webdav.locks), whether its refusal was logged."""
    session: "Session | None" = None
    dav_locks: "list[dict[str, Any]] | None" = None    # wsgidav's lock dicts
    logged: bool = False


current = _Current()


def client_address(environ: WSGIEnvironment) -> str:
    address: str = environ.get("REMOTE_ADDR", "?")
    return address


# wsgidav ships no types: the base class is Any to mypy.
class DomainController(BaseDomainController):  # type: ignore[misc]
    # `wsgidav_app` (WsgiDAVApp) and `config` (its options) are wsgidav's, untyped
    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        self.app: App = config["strongroom_app"]

    def get_domain_realm(self, path_info: str, environ: WSGIEnvironment) -> str:
        return REALM

    def require_authentication(self, realm: str, environ: WSGIEnvironment) -> bool:
        return True

    def supports_http_digest_auth(self) -> bool:
        return False  # digest would need the plain password; we store argon2id hashes

    def basic_auth_user(self, realm: str, user_name: str, password: str,
                        environ: WSGIEnvironment) -> bool:
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
