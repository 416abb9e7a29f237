"""The words of a message, in the recipient's language: a digest of changes and a
security notice, each as (subject, plain text, HTML), and the EmailMessage that
carries them.

Messages come from the portal's catalogs (appliance.web.i18n; the msgids are in
appliance/web/locale/*/LC_MESSAGES/messages.po), dates and sizes from Babel. Names
come from users, so they are made harmless before they go anywhere (`safe`: control
characters, line breaks and bidi controls become U+FFFD), the HTML part escapes
everything and isolates each name (<bdi>), and the only name in a header is the
client's in the subject (EmailMessage refuses a line break in a header anyway). No file contents,
no attachments.
"""
import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import quote

from strongroom.appliance.web import i18n

MAX_LINES = 200
# control characters, line and paragraph separators, bidi embeddings/overrides/isolates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe(text: str) -> str:
    """`text` with nothing that could break a line, a header or the reading order."""
    return _UNSAFE.sub("\ufffd", text)


@dataclass(frozen=True)
class Shown:
    """A line of a digest as its recipient sees it: `folder` and `old` are paths in the
    recipient's view ("/" for the top), `who` the names of those who made it."""
    action: str
    folder: str
    name: str
    is_dir: bool
    size: int | None
    who: str
    ts: float
    old: str | None = None


@dataclass(frozen=True)
class Section:
    """The lines of one client's tree or library, under its display name."""
    tree: str
    lines: list[Shown]


@dataclass(frozen=True)
class Text:
    subject: str
    text: str
    html: str


class Words:
    """gettext, ngettext and formats of one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in i18n.languages() else i18n.DEFAULT
        t = i18n.translations(self.lang)
        self.gettext, self.ngettext = t.gettext, t.ngettext

    def when(self, ts: float) -> str:
        return i18n.when(ts, self.lang)

    def size(self, n: int | None) -> str:
        return "" if n is None else i18n.size(n, self.lang)

    def action(self, line: Shown) -> str:
        _ = self.gettext
        return {"added": _("added"), "changed": _("changed"), "deleted": _("deleted"),
                "renamed": _("renamed")}.get(line.action, line.action)


def portal_link(base: str | None, folder: str) -> str | None:
    """The portal's page of `folder` (a view path), or None without a portal."""
    return None if base is None else f"{base}/web/files?p={quote(folder, safe='/')}"


# -- a digest of changes ------------------------------------------------------------------

def changes(lang: str, recipient: str, sections: list[Section], base: str | None) -> Text:
    """A digest: at most MAX_LINES lines, then "and N more"; links to each folder in
    the portal at `base` (https://host:port) when it is on."""
    w = Words(lang)
    recipient, sections = safe(recipient), [_cleaned(s) for s in sections]
    total = sum(len(s.lines) for s in sections)
    added = all(line.action == "added" for s in sections for line in s.lines)
    if len(sections) == 1 and added:
        subject = w.ngettext("%(count)d new document for %(name)s",
                             "%(count)d new documents for %(name)s", total)
    elif len(sections) == 1:
        subject = w.ngettext("%(count)d change to the documents of %(name)s",
                             "%(count)d changes to the documents of %(name)s", total)
    else:
        subject = w.ngettext("%(count)d change in your documents",
                             "%(count)d changes in your documents", total)
    subject = subject % {"count": total, "name": sections[0].tree if sections else ""}
    shown = _first(sections, MAX_LINES)
    more = total - sum(len(s.lines) for s in shown)
    text = _changes_text(w, recipient, shown, more, base)
    body = _changes_html(w, recipient, shown, more, base)
    return Text(subject, text, body)


def _cleaned(s: Section) -> Section:
    """`s` with every name made harmless (`safe`), before any goes into a message."""
    return Section(safe(s.tree), [
        Shown(line.action, safe(line.folder), safe(line.name), line.is_dir, line.size,
              safe(line.who), line.ts, None if line.old is None else safe(line.old))
        for line in s.lines])


def _first(sections: list[Section], limit: int) -> list[Section]:
    out = []
    for s in sections:
        if limit <= 0:
            break
        out.append(Section(s.tree, s.lines[:limit]))
        limit -= len(out[-1].lines)
    return out


def _joined(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name


def _changes_text(w: Words, recipient: str, sections: list[Section], more: int,
                  base: str | None) -> str:
    _ = w.gettext
    out = [_("Hello %(name)s,") % {"name": recipient}, "",
           _("These documents changed in Strongroom:"), ""]
    for s in sections:
        out += [s.tree, "=" * min(len(s.tree), 60)]
        for line in s.lines:
            details = [x for x in (w.size(line.size), line.who, w.when(line.ts)) if x]
            out.append(f"- {w.action(line)}: {_joined(line.folder, line.name)}"
                       f" ({', '.join(details)})")
            if line.old:
                out.append("  " + _("before: %(path)s") % {"path": line.old})
        link = portal_link(base, _common_folder(s.lines))
        if link:
            out += ["", _("Open in the web portal: %(url)s") % {"url": link}]
        out.append("")
    if more:
        out += [w.ngettext("and %(count)d more", "and %(count)d more", more)
                % {"count": more}, ""]
    out += ["-- ", _footer(w, base)]
    return "\n".join(out) + "\n"


def _common_folder(lines: list[Shown]) -> str:
    parts = [line.folder.strip("/").split("/") if line.folder.strip("/") else []
             for line in lines]
    common: list[str] = []
    for names in zip(*parts) if parts else ():
        if len(set(names)) != 1:
            break
        common.append(names[0])
    return "/" + "/".join(common)


def _footer(w: Words, base: str | None) -> str:
    _ = w.gettext
    if base is None:
        return _("You receive these messages because of your notification settings; "
                 "your administrator can change them.")
    return _("You receive these messages because of your notification settings; change "
             "them on your account page: %(url)s") % {"url": f"{base}/web/account"}


def _changes_html(w: Words, recipient: str, sections: list[Section], more: int,
                  base: str | None) -> str:
    _, e = w.gettext, _esc
    rows = []
    for s in sections:
        rows.append(f'<tr><th colspan="5" style="text-align:start;padding-top:1em">'
                    f'<bdi>{e(s.tree)}</bdi></th></tr>')
        for line in s.lines:
            link = portal_link(base, line.folder)
            folder = f"<bdi>{e(line.folder)}</bdi>"
            if link:
                folder = f'<a href="{e(link)}">{folder}</a>'
            old = ""
            if line.old:
                before = _("before: %(path)s") % {"path": line.old}
                old = f"<br><small>{e(before)}</small>"
            rows.append(f"<tr><td>{e(w.action(line))}</td><td>{folder}</td>"
                        f"<td><bdi>{e(line.name)}</bdi>{old}</td>"
                        f"<td>{e(w.size(line.size))}</td><td><bdi>{e(line.who)}</bdi>, "
                        f"{e(w.when(line.ts))}</td></tr>")
    if more:
        rest = w.ngettext("and %(count)d more", "and %(count)d more", more) % {"count": more}
        rows.append(f'<tr><td colspan="5">{e(rest)}</td></tr>')
    head = "".join(f'<th style="text-align:start">{e(h)}</th>' for h in
                   (_("What"), _("Folder"), _("Name"), _("Size"), _("By, when")))
    return _page(w, f"<p>{e(_('Hello %(name)s,') % {'name': recipient})}</p>"
                    f"<p>{e(_('These documents changed in Strongroom:'))}</p>"
                    f"<table cellpadding=\"4\"><tr>{head}</tr>{''.join(rows)}</table>"
                    f"<hr><p><small>{_linked(_footer(w, base))}</small></p>")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _linked(text: str) -> str:
    """Escaped `text` with its https:// URLs as links (ours: the portal's)."""
    return re.sub(r"(https://[^\s<>&\"]+)", r'<a href="\1">\1</a>', _esc(text))


def _page(w: Words, inner: str) -> str:
    lang, direction = w.lang, i18n.direction(w.lang)
    return (f'<!DOCTYPE html><html lang="{lang}" dir="{direction}"><head>'
            f'<meta charset="utf-8"></head><body>{inner}</body></html>\n')


# -- security notices ---------------------------------------------------------------------

def security(lang: str, login: str, what: str, ts: float, address: str | None,
             base: str | None) -> Text:
    """A notice about `what` (appliance.notify.outbox.SECURITY) to the account's owner."""
    w = Words(lang)
    _ = w.gettext
    event = {"password-changed": _("your password was changed"),
             "totp-enrolled": _("a second factor (TOTP) was enrolled"),
             "totp-reset": _("your second factor (TOTP) was reset"),
             "totp-removed": _("your second factor (TOTP) was removed"),
             "app-password-created": _("an app password was created"),
             "account-blocked": _("your account was blocked after failed logins"),
             }.get(what, what)
    subject = _("Security notice: %(what)s") % {"what": event}
    lines = [_("This concerns your Strongroom account %(login)s: %(what)s, on %(when)s.")
             % {"login": safe(login), "what": event, "when": w.when(ts)}]
    if address:
        lines.append(_("The request came from the address %(address)s.")
                     % {"address": safe(address)})
    lines.append(_("If this was you, nothing needs to be done. If it was not, tell your "
                   "administrator at once."))
    if base is not None:
        lines.append(_("Your account page: %(url)s") % {"url": f"{base}/web/account"})
    text = "\n\n".join(lines) + "\n"
    return Text(subject, text, _page(w, "".join(f"<p>{_linked(p)}</p>" for p in lines)))


# -- the message ----------------------------------------------------------------------------

def message(*, sender: str, to: str, words: Text, message_id: str,
            unsubscribe: str | None) -> EmailMessage:
    """The EmailMessage of `words` (a text and an HTML part) from `sender` to `to`:
    Auto-Submitted, the given Message-ID (the same on every attempt) and, with a portal,
    List-Unsubscribe pointing to the account page."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = words.subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe:
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg.set_content(words.text)
    msg.add_alternative(words.html, subtype="html")
    return msg
