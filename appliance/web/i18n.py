"""The portal's languages: gettext catalogs (locale/<lang>/LC_MESSAGES/messages.po,
read with Babel at start, so a fourth language is one file and no build step),
the choice of language for a request, and dates and sizes formatted for it.

A language's name, its writing direction and its date and number formats come from
Babel's locale data (CLDR), so a new catalog needs nothing else here. The catalogs
are kept up to date with scripts/i18n.sh."""
import gettext
import io
from datetime import datetime, tzinfo
from functools import cache, lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import DateTimePattern, parse_pattern
from babel.localtime import LOCALTZ
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import get_decimal_symbol, get_group_symbol

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
# Old tags browsers still send for a language (Java and old Android say "iw").
ALIASES = {"iw": "he", "no": "nb"}
MAX_ACCEPT = 40          # language ranges read from one Accept-Language header


@cache
def languages() -> tuple[str, ...]:
    """English, and every language with a catalog."""
    found = sorted(p.name for p in LOCALE_DIR.iterdir()
                   if (p / "LC_MESSAGES" / "messages.po").is_file())
    return (DEFAULT, *[lang for lang in found if lang != DEFAULT])


def _locale(lang: str) -> Locale:
    try:
        return Locale.parse(lang)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT)


def name(lang: str) -> str:
    """The language's name in itself ("Svenska", "עברית"), for the language switcher."""
    own = _locale(lang).get_display_name(lang) or lang
    return own[:1].upper() + own[1:]


NAMES = {lang: name(lang) for lang in languages()}


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
    return accepted(accept_language) or DEFAULT


def accepted(header: str) -> str | None:
    """The language of ours an Accept-Language header prefers most (RFC 9110: ranges
    in order of their q-values, q=0 meaning "not this one", a region tag such as
    sv-SE matching sv), or None."""
    wanted: list[tuple[float, str]] = []
    for part in header.split(",", MAX_ACCEPT)[:MAX_ACCEPT]:
        tag, *params = [p.strip() for p in part.split(";")]
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and tag != "*" and 0 < weight <= 1:
            wanted.append((weight, tag.replace("-", "_")))
    ours = languages()
    for _, tag in sorted(wanted, key=lambda w: -w[0]):     # stable: ties keep their order
        base = tag.split("_")[0].lower()
        found = Locale.negotiate([tag, ALIASES.get(base, base)], list(ours), sep="_")
        if found is not None:
            return str(found.language)
    return None


def direction(lang: str) -> str:
    """"rtl" for a language written right to left (Hebrew), else "ltr"."""
    return _locale(lang).text_direction


def when(ts: float | None, lang: str, tz: tzinfo = LOCALTZ) -> str:
    """A moment as the language writes it, to the minute, in the server's time zone
    (the organisation's): "Dec 2, 2026, 1:30 PM", "2 dec. 2026 13:30",
    "2 בדצמ׳ 2026, 13:30". Empty for no time."""
    if not ts:
        return ""
    try:
        return _when(int(ts // 60), lang, tz)
    except (ValueError, OverflowError, OSError):
        return ""


@lru_cache(maxsize=65536)
def _when(minute: int, lang: str, tz: tzinfo) -> str:
    # Remembered by the minute: a folder of thousands of files was mostly written in a
    # few minutes, and Babel's formatting is the slowest part of its page.
    return _datetime_pattern(lang).apply(
        datetime.fromtimestamp(minute * 60, tz), _locale(lang))


@cache
def _datetime_pattern(lang: str) -> DateTimePattern:
    loc = _locale(lang)
    return parse_pattern(str(loc.datetime_formats["medium"]).replace(
        "{1}", loc.date_formats["medium"].pattern).replace(
        "{0}", loc.time_formats["short"].pattern))


UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def size(n: int, lang: str) -> str:
    """Decimal units (as Windows Explorer and Finder show them), in the language's digits
    and separators ("1,5 MB" in Swedish)."""
    value, unit = float(n), 0
    while value >= 1000 and unit < len(UNITS) - 1:
        value, unit = value / 1000, unit + 1
    decimal, group = _separators(lang)
    text = f"{value:,.0f}" if unit == 0 else f"{value:,.1f}".removesuffix(".0")
    return text.translate({ord(","): group, ord("."): decimal}) + f"\u00a0{UNITS[unit]}"


@cache
def _separators(lang: str) -> tuple[str, str]:
    """The language's decimal and grouping signs (Babel's CLDR data)."""
    loc = _locale(lang)
    return get_decimal_symbol(loc), get_group_symbol(loc)
