#!/usr/bin/env bash
# The translation workflow of the manager web UI (hub/i18n.py loads the catalogs at start-up).
#
#   scripts/i18n.sh            extract the strings of hub/**.py, templates/pages/**.html and
#                              translations/vocabulary.html into translations/messages.pot, merge
#                              them into every translations/<lang>/LC_MESSAGES/messages.po, then
#                              list the Russian entries still to translate
#   scripts/i18n.sh check      only list what is untranslated or fuzzy (exit 1 if anything is)
#   scripts/i18n.sh init LANG  start a catalog for a new language (add it to hub.i18n.LANGUAGES)
#
# Then translate the listed msgids in translations/ru/LC_MESSAGES/messages.po (each plural needs
# its three Russian forms: 1 звонок, 2 звонка, 5 звонков), remove the "fuzzy" flag of entries
# Babel guessed, and run `.venv/bin/python -m pytest tests/test_i18n.py`: it fails while a
# string used by a page or by hub code has no Russian translation. English is the source
# language, so the en catalog may stay empty. Never commit compiled .mo files: the hub compiles
# the .po files in memory.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -x .venv/bin/pybabel ]]; then
    PYBABEL=.venv/bin/pybabel
    PYTHON=.venv/bin/python
else
    PYBABEL=pybabel
    PYTHON=python3
fi

check() {
    # Entries of the Russian catalog that would show English on a page.
    "$PYTHON" - <<'PY'
import sys
from babel.messages.pofile import read_po

with open("translations/ru/LC_MESSAGES/messages.po", "rb") as fp:
    catalog = read_po(fp, locale="ru")
missing = []
for message in catalog:
    if not message.id:
        continue
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    if message.fuzzy or not all(strings):
        missing.append(message.id[0] if isinstance(message.id, tuple) else message.id)
for msgid in missing:
    print(f"untranslated (ru): {msgid}")
print(f"{len(missing)} Russian entr{'y' if len(missing) == 1 else 'ies'} to translate")
sys.exit(1 if missing else 0)
PY
}

case "${1:-}" in
    "")
        version=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
        "$PYBABEL" extract -F babel.cfg -o translations/messages.pot \
            --project=crm-hub --version="$version" --copyright-holder="crm-hub authors" --add-comments=Translators: .
        "$PYBABEL" update -i translations/messages.pot -d translations
        check || true
        ;;
    check)
        check
        ;;
    init)
        "$PYBABEL" init -i translations/messages.pot -d translations -l "${2:?usage: $0 init LANG}"
        ;;
    *)
        sed -n '2,16p' "$0" >&2
        exit 2
        ;;
esac
