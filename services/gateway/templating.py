"""Server-side rendering for the widget and the console: jinja2 with autoescape, and gettext catalogs (Babel).

Source strings are English. Each language folder under translations/ holds one .po catalogue per area
(widget.po, console.po, …); they are read with Babel at start-up and merged, so there is no compiled .mo to forget.
"""
from __future__ import annotations

import functools
import gettext
import io
import pathlib

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
TRANSLATIONS = HERE / "translations"
LANGUAGES = {"zh-CN": "zh_CN", "en": "en"}
DEFAULT_LANGUAGE = "zh-CN"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    folder = TRANSLATIONS / LANGUAGES.get(language, LANGUAGES[DEFAULT_LANGUAGE]) / "LC_MESSAGES"
    merged: gettext.NullTranslations | None = None
    for po_file in sorted(folder.glob("*.po")):
        with po_file.open("rb") as handle:
            catalog = read_po(handle, locale=folder.parent.name)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        loaded = gettext.GNUTranslations(buffer)
        if merged is None:
            merged = loaded
        else:
            merged.add_fallback(loaded)
    return merged or gettext.NullTranslations()


@functools.cache
def environment(language: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(("html", "xml", "j2"), default_for_string=True, default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)
    env.globals["lang"] = language
    return env


def gettext_for(language: str):
    return translations(language).gettext


def render(template: str, language: str = DEFAULT_LANGUAGE, **context) -> str:
    return environment(language).get_template(template).render(**context)
