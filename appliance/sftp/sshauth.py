"""The SSH side of a connection: authentication and which channel requests are allowed."""
import logging

import paramiko
from paramiko import (AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
                      OPEN_SUCCEEDED)

from appliance.errors import AuthFailed

log = logging.getLogger("strongroom.sftp")


class SSHServer(paramiko.ServerInterface):
    """One per connection. After a successful login `session` is the service-layer Session."""

    def __init__(self, app, address: str):
        self.app = app
        self.address = address
        self.session = None
        self._key_principal = None

    def get_allowed_auths(self, username):
        return "publickey,password"

    def check_auth_password(self, username, password):
        try:
            principal = self.app.auth.password_login(username, password, "sftp", self.address)
        except AuthFailed:
            log.info("sftp login refused for %r from %s", username, self.address)
            return AUTH_FAILED
        self.session = self.app.session(principal, "sftp", self.address)
        log.info("sftp login %s from %s", username, self.address)
        return AUTH_SUCCESSFUL

    def check_auth_publickey(self, username, key):
        """Asked before the client's signature is verified (and again with it): only
        remember who the key belongs to; the login completes when paramiko, having
        verified the signature, lets the client open a channel."""
        try:
            self._key_principal = self.app.auth.publickey_principal(
                username, key.get_name(), key.get_base64(), "sftp", self.address)
        except AuthFailed:
            return AUTH_FAILED
        return AUTH_SUCCESSFUL

    def _authenticated(self) -> bool:
        if self.session is None and self._key_principal is not None:
            p = self._key_principal
            self.app.auth.record_success(p.login, "sftp", self.address, "publickey")
            self.session = self.app.session(p, "sftp", self.address)
            log.info("sftp login %s (public key) from %s", p.login, self.address)
        return self.session is not None

    def check_channel_request(self, kind, chanid):
        # paramiko opens channels only on an authenticated transport
        if kind == "session" and self._authenticated():
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel, name):
        if name != "sftp" or self.session is None:
            return False
        return super().check_channel_subsystem_request(channel, name)

    def check_channel_shell_request(self, channel):
        self._refuse("shell", "")
        return False

    def check_channel_exec_request(self, channel, command):
        self._refuse("exec", command.decode("utf-8", "replace")[:200])
        return False

    def check_channel_pty_request(self, *args):
        return True  # accepted so that the shell refusal, not the pty, is what fails

    def check_port_forward_request(self, address, port):
        return False

    def _refuse(self, what, detail):
        log.info("sftp %s refused for %s: %s", what, self.address, detail)
        if self.session is not None:
            self.session.audit_event(what, None, outcome="denied", detail=detail)
