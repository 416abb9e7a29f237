"""The account page (who is logged in, their portal sessions) and the Connect page
(how to reach the same files from a network drive or an SFTP program)."""
from typing import TYPE_CHECKING

from strongroom.appliance.web.http import Response
from strongroom.appliance.web.portal import Context

if TYPE_CHECKING:
    from strongroom.appliance.web.portal import Portal


def register(portal: "Portal") -> None:
    @portal.route("GET", "/account")
    def account(ctx: Context) -> Response:
        assert ctx.login is not None and ctx.login.principal.user_id is not None
        sessions = ctx.app.web_sessions.of_user(ctx.login.principal.user_id)
        return ctx.page("account.html", sessions=sessions, this=ctx.login.session_id)
