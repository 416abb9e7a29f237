"""The portal's languages: gettext catalogs (locale/<lang>/LC_MESSAGES/messages.po,
read with Babel at start, so a fourth language is one file and no build step),
the choice of language for a request, and dates and sizes formatted for it."""
import gettext
import io
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
RTL = frozenset({"he"})
NAMES = {"en": "English", "sv": "Svenska", "he": "עברית"}


@cache
def languages() -> tuple[str, ...]:
    """English, and every language with a catalog."""
    found = sorted(p.name for p in LOCALE_DIR.iterdir()
                   if (p / "LC_MESSAGES" / "messages.po").is_file())
    return (DEFAULT, *[lang for lang in found if lang != DEFAULT])


@cache
def translations(lang: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT or not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def choose(cookie: str | None, account: str | None, accept_language: str) -> str:
    """The language of a request: the one chosen on a page (cookie), the account's,
    else the browser's preference among ours, else English."""
    for lang in (cookie, account):
        if lang in languages():
            return lang
    wanted = []
    for part in accept_language.split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if tag:
            wanted.append((weight, tag.strip()))
    preferred = [tag.replace("-", "_") for _, tag in sorted(wanted, key=lambda w: -w[0])]
    found = Locale.negotiate(preferred, list(languages()), sep="_") if preferred else None
    return str(found.language) if found is not None else DEFAULT


def direction(lang: str) -> str:
    return "rtl" if lang in RTL else "ltr"


def when(ts: float | None, lang: str) -> str:
    if not ts:
        return ""
    try:
        return format_datetime(ts, format="medium", locale=lang)
    except (UnknownLocaleError, ValueError, OverflowError):
        return format_datetime(0, format="medium", locale=DEFAULT)


UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def size(n: int, lang: str) -> str:
    """Decimal units (as Windows Explorer and Finder show them), in the language's digits."""
    value, unit = float(n), 0
    while value >= 1000 and unit < len(UNITS) - 1:
        value, unit = value / 1000, unit + 1
    pattern = "#,##0" if unit == 0 else "#,##0.#"
    return f"{format_decimal(value, format=pattern, locale=lang)}\u00a0{UNITS[unit]}"
