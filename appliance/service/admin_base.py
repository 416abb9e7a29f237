"""What every Admin mixin (appliance.service.admin_*) stands on: the App, who acts, the
audit of every change, and finding the user or client a command names."""
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Client, User
from strongroom.appliance.errors import BadRequest, NotFound
from strongroom.auth import passwords

if TYPE_CHECKING:
    from strongroom.appliance.app import App

# A JSON object as an admin operation returns it and the CLI's --json prints it
# (appliance.cli.options.Json): its values are any JSON value.
Json: TypeAlias = dict[str, Any]


def chosen_password(login: str, password: str | None) -> tuple[str, bool]:
    """(the password, whether it was generated): `password` checked against the policy,
    or a generated one when None."""
    generated = password is None
    chosen = passwords.generate_password(login) if password is None else password
    try:
        passwords.check_policy(login, chosen)
    except ValueError as e:
        raise BadRequest(str(e)) from None
    return chosen, generated


class AdminBase:
    def __init__(self, app: "App", actor: str = "admin", protocol: str = "cli"):
        self.app, self.actor, self.protocol = app, actor, protocol

    def _audit(self, s: OrmSession, action: str, path: str | None,
               detail: str | None = None) -> None:
        """Every admin change is audited here, and may change access: sessions of
        this process drop what they remember (another process's within ACCESS_TTL)."""
        self.app.access_changed(s)
        self.app.audit.append(s, actor=self.actor, protocol=self.protocol, address=None,
                              action=action, path=path, detail=detail)

    def _user(self, s: OrmSession, login: str) -> User:
        user = repo.user_by_login(s, login)
        if user is None:
            alike = repo.user_named_alike(s, login)
            hint = f" (did you mean {alike.login!r}?)" if alike else ""
            raise NotFound(f"no user named {login!r}{hint}")
        return user

    def _client_row(self, s: OrmSession, name: str, kind: str = "client") -> Client:
        row = repo.client_by_name(s, name)
        if row is None or row.kind != kind:
            alike = repo.client_named_alike(s, name)
            hint = f" (did you mean {alike.name!r}?)" if alike and alike.kind == kind else ""
            raise NotFound(f"no {kind} named {name!r}{hint}")
        return row
