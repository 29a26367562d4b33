"""The console's catalogues: every string the templates and views show has a Chinese translation, and the
placeholders survive translation (a lost %(name)s would raise or print the wrong thing at run time)."""
import pathlib
import re

from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from services.gateway.routes_console import COMMENT_STATE_NAMES, NOTICES, STATE_NAMES, WARNINGS
from services.gateway.templating import TEMPLATES, TRANSLATIONS, render

CONSOLE_TEMPLATES = sorted((TEMPLATES / "console").glob("*.html"))
VIEWS = pathlib.Path(__file__).resolve().parents[3] / "services" / "gateway" / "routes_console.py"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def used_msgids() -> set:
    found = set()
    for path in CONSOLE_TEMPLATES:
        with path.open("rb") as handle:
            for _line, _function, message, _comments in babel_extract(
                    handle, ["_", "gettext", "ngettext"], [], {"extensions": "jinja2.ext.i18n"}):
                parts = (message,) if isinstance(message, str) else tuple(m for m in message if m)
                found.add(parts[0])
    with VIEWS.open("rb") as handle:
        found.update(message for _line, message, _comments, _context in extract("python", handle, keywords={"_": None}))
    found.update(NOTICES.values())
    found.update(text for texts in WARNINGS.values() for text in texts)
    found.update(STATE_NAMES.values())
    found.update(COMMENT_STATE_NAMES.values())
    return found


def catalogue(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "console.po").open("rb") as handle:
        return read_po(handle, locale=language)


def test_every_console_string_has_a_chinese_translation():
    chinese = catalogue("zh_CN")
    untranslated = [msgid for msgid in used_msgids()
                    if not (chinese.get(msgid) and (chinese.get(msgid).string if isinstance(
                        chinese.get(msgid).string, str) else chinese.get(msgid).string[0]))]
    assert not untranslated, untranslated


def test_translations_keep_their_placeholders():
    for message in catalogue("zh_CN"):
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        target = message.string if isinstance(message.string, str) else message.string[0]
        assert set(PLACEHOLDER.findall(source)) == set(PLACEHOLDER.findall(target)), source


def test_the_english_catalogue_lists_the_same_strings():
    assert {m.id for m in catalogue("en") if m.id} == {m.id for m in catalogue("zh_CN") if m.id}


def test_the_sign_in_page_renders_in_both_languages():
    assert "登录工作台" in render("console/login.html", "zh-CN", view=None, errors={}, login_csrf="t", next="/console")
    english = render("console/login.html", "en", view=None, errors={}, login_csrf="t", next="/console")
    assert "Sign in to the staff console" in english and 'lang="en"' in english


def test_no_string_of_the_console_is_translated_differently_by_another_areas_catalogue():
    # templating merges every area's catalogue and the first file wins, so a clash would change another page's text
    console = {m.id: m.string for m in catalogue("zh_CN") if m.id}
    clashes = []
    for path in sorted((TRANSLATIONS / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        if path.name == "console.po":
            continue
        with path.open("rb") as handle:
            for message in read_po(handle, locale="zh_CN"):
                if message.id and message.id in console and message.string and console[message.id] != message.string:
                    clashes.append(f"{path.name}: {message.id!r}")
    assert not clashes, clashes
