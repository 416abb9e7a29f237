"""Pages from Jinja2 templates (autoescape on: every file name, every message is
escaped), one environment per language with its gettext catalog installed."""
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from strongroom.appliance.web import i18n
from strongroom.appliance.web.http import url

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment(lang: str) -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
                      trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(url=url, lang=lang, dir=i18n.direction(lang),
                       languages=i18n.languages(), language_names=i18n.NAMES,
                       size=lambda n: i18n.size(n, lang), when=lambda t: i18n.when(t, lang))
    return env


def page(lang: str, template: str, **context: Any) -> str:
    context.setdefault("user", None)
    context.setdefault("csrf", "")
    context.setdefault("here", "/web/")
    for optional in ("notice", "error", "back", "back_text", "detail"):
        context.setdefault(optional, None)
    return environment(lang).get_template(template).render(**context)
