"""The HTTPS server: cheroot (the WSGI server wsgidav is built and tested with)
with TLS 1.2+ serving the wsgidav application stack; its connection limits are
in listener.py."""
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from wsgiref.types import WSGIApplication

from wsgidav.dir_browser import WsgiDavDirBrowser
from wsgidav.error_printer import ErrorPrinter
from wsgidav.http_authenticator import HTTPAuthenticator
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from strongroom.appliance.web.front import front
from strongroom.appliance.web.portal import Portal
from strongroom.appliance.webdav.davtree import DavTree
from strongroom.appliance.webdav.domain import DomainController
from strongroom.appliance.webdav.guard import ChunkedXmlBody, guard
from strongroom.appliance.webdav.internal import ErrorPages
from strongroom.appliance.webdav.listener import Server, TLSAdapter
from strongroom.appliance.webdav.locks import LockStorage
from strongroom.appliance.webdav.probes import probes
from strongroom.appliance.webdav.props import PropertyManager

if TYPE_CHECKING:
    from strongroom.appliance.app import App

log = logging.getLogger("strongroom.webdav")
# Our own listing template: no script, icon or stylesheet links, which clients that
# parse HTML listings (lftp) would take for files, and no third-party branding.
HTDOCS = Path(__file__).parent / "htdocs"


# WsgiDAVApp is Any to mypy (wsgidav ships no types): a WSGI application.
def make_wsgi_app(app: "App") -> WSGIApplication:
    cfg = app.config
    application: WSGIApplication = WsgiDAVApp({
        "provider_mapping": {"/": DavTree()},
        "middleware_stack": [ErrorPrinter, ErrorPages, HTTPAuthenticator,
                             ChunkedXmlBody, WsgiDavDirBrowser, RequestResolver],
        "strongroom_app": app,
        "http_authenticator": {"domain_controller": DomainController, "accept_basic": True,
                               "accept_digest": False, "default_to_digest": False},
        "lock_storage": LockStorage(app.locks.purge_expired),
        "property_manager": PropertyManager(),
        "block_size": cfg.webdav.block_size,
        "verbose": 1,
        "logging": {"enable": False},
        "suppress_version_info": True,
        "add_header_MS_Author_Via": True,
        "honor_mtime_header": True,
        "dir_browser": {"enable": True, "icon": False, "response_trailer": "Strongroom",
                        "show_user": True, "davmount": False, "ms_sharepoint_support": False,
                        "directory_slash": False, "htdocs_path": str(HTDOCS)},
        "hotfixes": {"emulate_win32_lastmod": True, "re_encode_path_info": True,
                     "unquote_path_info": False},
    })
    return application


def make_server(app: "App", host: str, port: int) -> Server:
    cfg = app.config
    portal = Portal(app) if cfg.web.enabled else None
    return Server((host, port), probes(app, front(portal, guard(make_wsgi_app(app)))),
                  tls=TLSAdapter(cfg.tls.cert_file, cfg.tls.key_file),
                  threads=cfg.webdav.threads, header_timeout=cfg.webdav.header_timeout,
                  per_address=cfg.webdav.max_unauthenticated_per_address,
                  max_header_size=cfg.webdav.max_header_size, metrics=app.metrics)
