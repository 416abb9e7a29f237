"""The invitation page (`/web/invite?t=TOKEN`, public): an invited user chooses a
password and enrols TOTP on one page (QR code and secret, then a code from the
app), and is then logged in.

The form carries the same double-submit token as the login forms (login_pages), so
another site cannot make a browser accept an invitation. Checking and using the
link is appliance.service.invitations' (one use, audited); a used, expired or
unknown link answers a page saying so (410 or 400), never a traceback.
"""
from typing import TYPE_CHECKING

import segno
from markupsafe import Markup

from strongroom.appliance import errors
from strongroom.appliance.service.invitations import Invitations, Unusable
from strongroom.appliance.web.http import Response, url
from strongroom.appliance.web.login_pages import _logged_in, _pre_token_ok, _with_pre_token
from strongroom.appliance.web.portal import Context

if TYPE_CHECKING:
    from strongroom.appliance.web.portal import Portal


def register(portal: "Portal") -> None:
    @portal.route("GET", "/invite", public=True)
    def invite_form(ctx: Context) -> Response:
        return _form(ctx, ctx.request.query.get("t", ""))

    @portal.route("POST", "/invite", public=True)
    def invite_accept(ctx: Context) -> Response:
        form = ctx.request.form()
        token = form.get("t", "")
        if not _pre_token_ok(ctx, form.get("csrf", "")):
            return _form(ctx, token, 403, ctx.gettext("The page was too old. Please try again."))
        if form.get("password", "") != form.get("repeat", ""):
            return _form(ctx, token, 400, ctx.gettext("The two passwords are not the same."))
        try:
            principal = _invitations(ctx).accept(token, form.get("password", ""),
                                                 form.get("code", ""))
        except Unusable as e:
            return _gone(ctx, e)
        except errors.BadRequest as e:
            return _form(ctx, token, 400, str(e))
        return _logged_in(ctx, principal, url("/files"))


def _invitations(ctx: Context) -> Invitations:
    return Invitations(ctx.app, "web", ctx.request.address)


def _form(ctx: Context, token: str, status: int = 200, error: str | None = None) -> Response:
    """The invitation's page (with `error` after a refused try), or why it cannot be used."""
    try:
        invite = _invitations(ctx).open(token)
    except Unusable as e:
        return _gone(ctx, e)
    qr = Markup(segno.make(invite.uri, error="m").svg_inline(
        scale=4, omitsize=True, light="#fff", title=ctx.gettext("QR code")))
    return _with_pre_token(ctx, "invite.html", status, invite=invite, token=token, qr=qr,
                           error=error)


def _gone(ctx: Context, e: Unusable) -> Response:
    if e.status == 410:
        text = ctx.gettext("This invitation link was already used or has expired. If you "
                           "have set your password, log in; otherwise ask your contact for "
                           "a new invitation.")
    else:
        text = ctx.gettext("This invitation link is not valid. Check that the whole link "
                           "was copied, or ask your contact for a new invitation.")
    return ctx.page("message.html", e.status, heading=ctx.gettext("Invitation not valid"),
                    text=text, back=url("/login"), back_text=ctx.gettext("Log in"), user=None)
