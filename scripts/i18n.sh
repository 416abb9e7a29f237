#!/bin/sh
# The portal's message catalogs (appliance/web/locale/<lang>/LC_MESSAGES/messages.po).
#
#   scripts/i18n.sh            extract the messages of the templates and page handlers
#                              (babel.cfg) into locale/messages.pot, then bring every
#                              catalog up to date with it (new messages come untranslated)
#   scripts/i18n.sh --check    change nothing; exit non-zero, naming each message, when a
#                              catalog lacks a message or its translation, has a fuzzy
#                              entry, or a translation's %(name)s placeholders differ
#   scripts/i18n.sh --init LL  start a catalog for a new language LL (e.g. de): the
#                              portal offers it as soon as the file is translated
#
# The daemon reads the .po files themselves (appliance/web/i18n.py): no compile step.
set -eu
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
PYTHON=${PYTHON:-.venv/bin/python}
LOCALE=appliance/web/locale
POT=$LOCALE/messages.pot

extract() {   # extract OUTPUT
    "$PYBABEL" --quiet extract -F babel.cfg --add-location=file --sort-by-file \
        --project=Strongroom --copyright-holder="Strongroom contributors" \
        -o "$1" .
}

case "${1:-}" in
--check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    extract "$tmp/messages.pot"
    exec "$PYTHON" - "$tmp/messages.pot" "$LOCALE" <<'PY'
import re, sys
from pathlib import Path
from babel.messages.pofile import read_po

def ids(message):
    return message.id if isinstance(message.id, tuple) else (message.id,)

def placeholders(texts):
    return sorted(p for t in texts for p in re.findall(r"%\([a-z_]+\)s", t or ""))

pot_path, locale = sys.argv[1], Path(sys.argv[2])
with open(pot_path, "rb") as f:
    template = read_po(f)
problems = []
for po in sorted(locale.glob("*/LC_MESSAGES/messages.po")):
    lang = po.parent.parent.name
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    for m in template:
        if not m.id:
            continue
        t = catalog.get(m.id, m.context)
        strings = t.string if t is not None and isinstance(t.string, tuple) else \
            ((t.string,) if t is not None else ())
        if t is None:
            problems.append(f"{lang}: missing: {m.id!r}")
        elif t.fuzzy:
            problems.append(f"{lang}: fuzzy: {m.id!r}")
        elif not all(strings):
            problems.append(f"{lang}: untranslated: {m.id!r}")
        elif any(placeholders(ids(m)[:1]) != placeholders((s,)) for s in strings):
            problems.append(f"{lang}: placeholders differ: {m.id!r}")
for p in problems:
    print(p, file=sys.stderr)
if problems:
    sys.exit(f"{len(problems)} problem(s); run scripts/i18n.sh and translate the new messages")
print("every catalog translates every message")
PY
    ;;
--init)
    lang=${2:?usage: scripts/i18n.sh --init LANGUAGE}
    extract "$POT"
    "$PYBABEL" --quiet init -i "$POT" -d "$LOCALE" -D messages -l "$lang"
    ;;
"")
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    extract "$tmp/messages.pot"
    if [ -f "$POT" ] && [ "$(grep -v '^"POT-Creation-Date' "$POT")" = \
            "$(grep -v '^"POT-Creation-Date' "$tmp/messages.pot")" ]; then
        echo "no message changed"     # and no file rewritten for a new date only
        exit 0
    fi
    mv "$tmp/messages.pot" "$POT"
    # No fuzzy guesses (a near miss is usually a wrong translation: better blank), and
    # messages gone from the code leave the catalogs (git keeps their history).
    "$PYBABEL" --quiet update -i "$POT" -d "$LOCALE" -D messages --no-fuzzy-matching \
        --ignore-obsolete
    ;;
*)
    echo "usage: scripts/i18n.sh [--check | --init LANGUAGE]" >&2
    exit 2
    ;;
esac
