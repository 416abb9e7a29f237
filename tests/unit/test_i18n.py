"""The portal's languages: every message of the templates and page handlers is
translated in every catalog (found with babel.cfg, the configuration
scripts/i18n.sh extracts with), the choice of language for a request, the writing
direction, and dates and sizes written the language's way."""
import os
import re
import shutil
import subprocess
import sys
from datetime import timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from strongroom.appliance.web import i18n, render

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "appliance" / "web"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
TRANSLATED = [lang for lang in i18n.languages() if lang != i18n.DEFAULT]


def extracted() -> dict[str, list[str]]:
    """Every message id the code asks for, with where (babel.cfg's mapping)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, list[str]] = {}
    for filename, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map):
        for text in (message if isinstance(message, tuple) else (message,)):
            if text:
                found.setdefault(text, []).append(filename)
    return found


def catalog(lang: str):
    with (WEB / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


def forms(message) -> tuple[str, ...]:
    """A message's translations: one, or one per plural form (ngettext)."""
    return message.string if isinstance(message.string, tuple) else (message.string,)


def by_text(lang: str) -> dict:
    """The catalog's messages by id, a plural one (ngettext) by its plural id too."""
    found = {}
    for m in catalog(lang):
        for text in (m.id if isinstance(m.id, tuple) else (m.id,)):
            found[text] = m
    return found


MESSAGES = extracted()


def test_the_extraction_sees_templates_and_handlers():
    """The check below cannot pass by extracting nothing: messages of a template
    (Jinja2's extractor) and of a handler's ctx.gettext (Python's) are both found."""
    assert any(f.startswith("appliance/web/templates/") for f in MESSAGES["Trash"])
    assert any(f.endswith("file_pages.py") for f in MESSAGES["My files"])
    assert "Contents of %(folder)s" in MESSAGES
    assert len(MESSAGES) > 60


def test_english_swedish_and_hebrew_are_offered():
    assert {"en", "sv", "he"} <= set(i18n.languages())
    assert i18n.languages()[0] == "en"
    assert i18n.NAMES["sv"] == "Svenska" and i18n.NAMES["he"] == "עברית"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_is_translated(lang):
    entries = by_text(lang)
    missing = [m for m in MESSAGES if m not in entries or not all(forms(entries[m]))]
    fuzzy = [m for m in MESSAGES if m in entries and entries[m].fuzzy]
    placeholders = [m for m in MESSAGES if m in entries and any(
        form and sorted(PLACEHOLDER.findall(m)) != sorted(PLACEHOLDER.findall(form))
        for form in forms(entries[m]))]
    assert (missing, fuzzy, placeholders) == ([], [], []), "run scripts/i18n.sh and translate"


@pytest.mark.parametrize("lang", [lang for lang in TRANSLATED if i18n.direction(lang) == "rtl"])
def test_what_goes_into_a_right_to_left_sentence_is_isolated(lang):
    """A login, a file name or an address put into a Hebrew sentence keeps its own
    direction (FSI ... PDI around each placeholder), as a <bdi> does in a template."""
    bare = [m.id for m in catalog(lang) if m.id for form in forms(m)
            if len(PLACEHOLDER.findall(form)) !=
            len(re.findall(r"\u2068%\(\w+\)[sd]\u2069", form))]
    assert bare == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_a_translation_is_what_a_page_gets(lang):
    """The catalog is compiled in memory at start; a page's text is the translation."""
    entries = catalog(lang)
    assert i18n.translations(lang).gettext("Trash") == entries.get("Trash").string
    assert i18n.translations("en").gettext("Trash") == "Trash"


def test_the_words_of_each_language():
    assert i18n.translations("sv").gettext("Log in") == "Logga in"
    assert i18n.translations("sv").gettext("Trash") == "Papperskorg"
    assert i18n.translations("he").gettext("Files") == "קבצים"
    assert i18n.translations("he").gettext("Trash") == "סל מחזור"


@pytest.mark.parametrize("cookie, account, accept, expected", [
    (None, None, "", "en"),
    (None, None, "sv", "sv"),
    (None, None, "sv-SE,sv;q=0.9,en-US;q=0.8,en;q=0.7", "sv"),
    (None, None, "he-IL,he;q=0.9,en;q=0.8", "he"),
    (None, None, "HE-il", "he"),
    (None, None, "iw-IL", "he"),                          # the old tag for Hebrew
    (None, None, "en-GB,en;q=0.9,sv;q=0.8", "en"),
    (None, None, "fr-FR,fr;q=0.9,sv;q=0.5,he;q=0.4", "sv"),  # the first of ours in q order
    (None, None, "en;q=0.3, he;q=0.8, sv;q=0.5", "he"),   # q-values, not the order written
    (None, None, "sv ; q=0.7, en ; q=0.5", "sv"),         # blanks around parameters
    (None, None, "sv;q=0, he;q=0.1", "he"),               # q=0: "not this one"
    (None, None, "sv;q=0", "en"),
    (None, None, "de-DE,de;q=0.9", "en"),                 # none of ours: English
    (None, None, "*", "en"),
    (None, None, "sv;q=abc", "en"),                       # a broken weight counts as 0
    (None, None, ";;,,;q=1,", "en"),
    (None, "he", "sv-SE", "he"),                          # the account's over the browser's
    (None, "xx", "sv-SE", "sv"),                          # an unknown one is passed over
    ("sv", "he", "he-IL", "sv"),                          # the switcher's over the account's
    ("en", "he", "he", "en"),
    ("zz", None, "he", "he"),
    ("", "", "", "en"),
])
def test_language_negotiation(cookie, account, accept, expected):
    assert i18n.choose(cookie, account, accept) == expected


def test_a_long_accept_language_is_read_only_so_far():
    header = ",".join(["de"] * 100_000 + ["sv"])
    assert i18n.choose(None, None, header) == "en"


def test_direction():
    assert i18n.direction("he") == "rtl"
    assert (i18n.direction("sv"), i18n.direction("en")) == ("ltr", "ltr")
    assert i18n.direction("ar") == "rtl"    # a fourth language needs only its catalog


def test_dates_are_written_the_languages_way():
    ts = 1_780_000_000      # 2026-05-28 20:26:40 UTC
    assert i18n.when(ts, "en", timezone.utc) == "May 28, 2026, 8:26\u202fPM"
    assert i18n.when(ts, "sv", timezone.utc) == "28 maj 2026 20:26"
    assert i18n.when(ts, "he", timezone.utc) == "28 במאי 2026, 20:26"
    assert i18n.when(None, "sv") == "" and i18n.when(0, "he") == ""
    assert i18n.when(1e30, "en") == ""


def test_sizes_are_written_the_languages_way():
    assert i18n.size(1_534_000, "en") == "1.5\u00a0MB"
    assert i18n.size(1_534_000, "sv") == "1,5\u00a0MB"
    assert i18n.size(999, "he") == "999\u00a0B"
    assert i18n.size(2_000_000_000_000, "he") == "2\u00a0TB"


DATE_OR_SIZE = re.compile(r"\{\{[^}]*\b(\w+_at|mtime|size)\b[^}]*\}\}")


def test_every_date_and_size_in_a_template_is_formatted():
    """A raw timestamp or byte count on a page would be neither readable nor the
    language's: every one goes through when() or size()."""
    raw = [(t.name, m.group(0)) for t in sorted((WEB / "templates").glob("*.html"))
           for m in DATE_OR_SIZE.finditer(t.read_text("utf-8"))
           if not re.search(r"\b(when|size)\(", m.group(0))]
    assert raw == []


def _files_page(lang: str) -> str:
    gettext = i18n.translations(lang).gettext
    entry = SimpleNamespace(name="חוזה final (2).pdf", path="/acme/חוזה final (2).pdf",
                            is_dir=False, size=1_534_000, mtime=1_780_000_000)
    folder = SimpleNamespace(name="<b>x</b>", path="/acme/<b>x</b>", is_dir=True,
                             size=0, mtime=1_780_000_000)
    return render.page(lang, "files.html", path="/acme", title="acme",
                       crumbs=[(gettext("My files"), "/"), ("acme", "/acme")],
                       entries=[folder, entry], sort="name", order="asc", writable=True,
                       columns=[("name", gettext("Name")), ("size", gettext("Size"))],
                       user=SimpleNamespace(login="dana"), csrf="t", here="/web/files")


def test_a_hebrew_page_is_right_to_left_and_hebrew():
    page = _files_page("he")
    assert '<html lang="he" dir="rtl">' in page
    for word in ("קבצים", "סל מחזור", "העלאת קבצים", "תיקייה חדשה", "הקבצים שלי", "גודל"):
        assert word in page
    assert "Upload files" not in page and ">Trash<" not in page
    # names a user chose are isolated, so a mixed Hebrew/Latin name reads right
    assert "<bdi>חוזה final (2).pdf</bdi>" in page
    assert "<bdi>&lt;b&gt;x&lt;/b&gt;/</bdi>" in page
    assert "1.5\u00a0MB" in page


def test_a_swedish_page_is_left_to_right_and_swedish():
    page = _files_page("sv")
    assert '<html lang="sv" dir="ltr">' in page
    assert "Papperskorg" in page and "Ladda upp filer" in page and "1,5\u00a0MB" in page


def test_the_stylesheet_uses_logical_properties_only():
    """left/right would not mirror in a right-to-left page."""
    css = re.sub(r"/\*.*?\*/", "", (WEB / "static" / "portal.css").read_text(), flags=re.S)
    assert re.findall(r"(?:margin|padding|border)-(?:left|right)|\b(?:left|right)\s*:|"
                      r"float\s*:|text-align\s*:\s*(?:left|right)", css) == []


def _script(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    venv = Path(sys.executable).parent
    env = dict(os.environ, PYTHON=sys.executable, PYBABEL=str(venv / "pybabel"))
    return subprocess.run(["sh", str(tree / "scripts" / "i18n.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_check_script_passes_and_fails(tmp_path):
    """scripts/i18n.sh --check passes on the catalogs as they are, and names what is
    missing when a translation is emptied."""
    assert _script(ROOT, "--check").returncode == 0
    tree = tmp_path / "repo"
    shutil.copytree(WEB, tree / "appliance" / "web",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "babel.cfg", tree)
    (tree / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "i18n.sh", tree / "scripts")
    po = tree / "appliance" / "web" / "locale" / "sv" / "LC_MESSAGES" / "messages.po"
    po.write_text(po.read_text("utf-8").replace('msgstr "Papperskorg"', 'msgstr ""'), "utf-8")
    result = _script(tree, "--check")
    assert result.returncode != 0
    assert "sv: untranslated: 'Trash'" in result.stderr
