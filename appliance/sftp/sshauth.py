"""The SSH side of a connection: authentication and which channel requests are allowed.

Methods offered (the same for every login name, so nothing tells whether an account
exists or has TOTP):
- keyboard-interactive: "Password:", then, unless the account has no TOTP,
  "Verification code:";
- password: the password, or for a TOTP user the password followed by the code
  (for clients that cannot answer a second prompt);
- publickey: for a TOTP user only a first factor (partial success), after which
  keyboard-interactive asks for the code alone.

A first factor whose code never comes (the client leaves, or starts over) is a
failed attempt: the listener calls `closed()` when the connection ends.

What one connection may hold is bounded for the whole connection, not per channel:
at most [ssh] max_sessions channels, and MAX_HANDLES open handles over all of them
(each SFTP subsystem registers here).
"""
import threading
import logging
from typing import TYPE_CHECKING, Any

import paramiko
from paramiko import Channel, Message, PKey, Transport
from paramiko.common import (AUTH_FAILED, AUTH_PARTIALLY_SUCCESSFUL, AUTH_SUCCESSFUL,
                             OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED)
from paramiko.server import InteractiveQuery

from strongroom.appliance.errors import AuthFailed
from strongroom.appliance.service import Principal, Session
from strongroom.appliance.service.login import Factor
from strongroom.appliance.sftp.handler import OpenUploads

if TYPE_CHECKING:
    from strongroom.appliance.app import App
    from strongroom.appliance.sftp.subsystem import Subsystem

log = logging.getLogger("strongroom.sftp")
PASSWORD_PROMPT = "Password: "
CODE_PROMPT = "Verification code: "
ALL_METHODS = "publickey,keyboard-interactive,password"


class SSHServer(paramiko.ServerInterface):
    """One per connection. After a successful login `session` is the service-layer Session."""

    def __init__(self, app: "App", address: str):
        self.app = app
        self.address = address
        self.session: Session | None = None
        self.transport: Transport | None = None   # set by the listener: channels count on it
        self._subsystems: set[Subsystem] = set()
        self._subsystems_lock = threading.Lock()
        self.uploads = OpenUploads()   # cancelled when the connection ends (server.py)
        # a Factor proven by a public-key signature, awaiting a code
        self._key: Factor | None = None
        # keyboard-interactive: the login whose password prompt is out, or the Factor
        # (password or key) whose code prompt is out
        self._pending: str | Factor | None = None
        # a passed first factor whose code has not been answered
        self._owed: Factor | None = None

    def closed(self) -> None:
        """The connection ended: a login left at its code prompt was a failed attempt."""
        if self.session is not None:
            self.session.close()
        try:
            self._abandon()
        except Exception as e:   # the database is away: the connection is gone anyway
            log.error("sftp %s: recording an abandoned login failed: %s", self.address, e)

    def _abandon(self) -> None:
        owed, self._owed, self._pending = self._owed, None, None
        if owed is not None:
            self.app.auth.abandoned(owed, "sftp", self.address)

    def _ask_code(self, factor: Factor) -> InteractiveQuery:
        self._pending = self._owed = factor
        return InteractiveQuery("", "", (CODE_PROMPT, False))

    def get_allowed_auths(self, username: str) -> str:
        if self._key is not None and self._key.login == username:
            return "keyboard-interactive"
        return ALL_METHODS

    def _login(self, principal: Principal) -> int:
        # logged (once, as every protocol's logins are) by the authenticator
        self.session = self.app.session(principal, "sftp", self.address)
        return AUTH_SUCCESSFUL

    def check_auth_password(self, username: str, password: str | bytes) -> int:
        if isinstance(password, bytes):   # paramiko's answer to bytes that are not UTF-8
            password = password.decode("utf-8", "replace")
        try:
            principal = self.app.auth.password_login(username, password, "sftp", self.address)
        except AuthFailed:
            return AUTH_FAILED
        return self._login(principal)

    def check_auth_publickey(self, username: str, key: PKey) -> int:
        """Asked before the client signs (and again with the signature). The login
        advances only once paramiko has verified the signature, which it does right
        after this returns, on this same key object: that call is watched."""
        try:
            factor = self.app.auth.key_factor(username, key.get_name(), key.get_base64(),
                                              "sftp", self.address)
        except AuthFailed:
            return AUTH_FAILED
        verify = key.verify_ssh_sig

        def watched(data: bytes, msg: Message) -> bool:
            ok = verify(data, msg)
            if ok:
                self._key_proven(factor)
            return ok

        key.verify_ssh_sig = watched  # type: ignore[method-assign]  # this key object only
        return AUTH_PARTIALLY_SUCCESSFUL if factor.needs_code else AUTH_SUCCESSFUL

    def _key_proven(self, factor: Factor) -> None:
        self.app.auth.key_verified(factor, "sftp", self.address)
        if factor.needs_code:
            self._key = self._owed = factor
        else:
            assert factor.principal is not None   # no code needed: the key let it in
            self._login(factor.principal)

    def check_auth_interactive(self, username: str, submethods: str) -> InteractiveQuery:
        if self._key is not None and self._key.login == username:
            if self._owed is not self._key:
                self._abandon()
            return self._ask_code(self._key)
        self._abandon()   # starting over leaves the earlier attempt unfinished
        self._pending = username
        return InteractiveQuery("", "", (PASSWORD_PROMPT, False))

    def check_auth_interactive_response(self, responses: list[str]
                                        ) -> int | InteractiveQuery:
        pending, self._pending = self._pending, None
        if pending is None:
            return AUTH_FAILED
        if len(responses) != 1:   # not one answer to one prompt: a failed attempt
            if isinstance(pending, str):
                self.app.auth.refused(pending, "sftp", self.address, "keyboard-interactive")
            self._abandon()
            return AUTH_FAILED
        try:
            if isinstance(pending, str):
                factor = self.app.auth.first_factor(pending, responses[0], "sftp", self.address)
                if not factor.needs_code:
                    assert factor.principal is not None   # no code needed: it passed
                    return self._login(factor.principal)
                return self._ask_code(factor)
            self._owed = None     # answered: second_factor counts a wrong code itself
            principal = self.app.auth.second_factor(pending, responses[0], "sftp", self.address)
        except AuthFailed:
            return AUTH_FAILED
        return self._login(principal)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        # paramiko opens channels only on an authenticated transport
        if kind != "session" or self.session is None:
            return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        # paramiko's private map of open channels (a ChannelMap)
        channels: list[Any] = getattr(getattr(self.transport, "_channels", None), "values",
                                      list)()
        if len(channels) >= self.app.config.ssh.max_sessions:
            log.info("sftp %s: channel refused: %d open (max_sessions)", self.address,
                     len(channels))
            return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        return OPEN_SUCCEEDED

    # -- what the connection holds -----------------------------------------------------

    def adopt(self, subsystem: "Subsystem") -> None:
        with self._subsystems_lock:
            self._subsystems.add(subsystem)

    def release(self, subsystem: "Subsystem") -> None:
        with self._subsystems_lock:
            self._subsystems.discard(subsystem)

    def handles_open(self) -> int:
        """Open SFTP handles over every channel of this connection."""
        with self._subsystems_lock:
            return sum(len(s.file_table) + len(s.folder_table) for s in self._subsystems)

    def check_channel_subsystem_request(self, channel: Channel, name: str) -> bool:
        if name != "sftp" or self.session is None:
            return False
        return super().check_channel_subsystem_request(channel, name)

    def check_channel_shell_request(self, channel: Channel) -> bool:
        self._refuse("shell", "")
        return False

    def check_channel_exec_request(self, channel: Channel, command: bytes) -> bool:
        self._refuse("exec", command.decode("utf-8", "replace")[:200])
        return False

    def check_channel_pty_request(self, *args: Any, **kwargs: Any) -> bool:
        return True  # accepted so that the shell refusal, not the pty, is what fails

    def check_port_forward_request(self, address: str, port: int) -> int:
        return False

    def _refuse(self, what: str, detail: str) -> None:
        log.info("sftp %s refused for %s: %s", what, self.address, detail)
        if self.session is not None:
            self.session.audit_event(what, None, outcome="denied", detail=detail)
