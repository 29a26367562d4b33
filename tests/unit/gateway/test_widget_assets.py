"""widget.js stays small and dependency-free; every widget string has a Chinese translation."""
import gzip
import pathlib
import re

from babel.messages.pofile import read_po

from services.gateway.templating import environment

GATEWAY = pathlib.Path(__file__).resolve().parents[3] / "services" / "gateway"
WIDGET_JS = GATEWAY / "static" / "widget.js"


def test_widget_js_is_under_ten_kilobytes_gzipped():
    assert len(gzip.compress(WIDGET_JS.read_bytes(), 9)) < 10 * 1024


def test_widget_js_loads_nothing_but_the_iframe():
    source = WIDGET_JS.read_text()
    assert "import " not in source and "require(" not in source
    assert "document.cookie" not in source and "localStorage" not in source


def widget_msgids() -> set:
    env = environment("en")
    ids = set()
    for template in (GATEWAY / "templates" / "widget").glob("*.html"):
        for _line, _func, message in env.extract_translations(template.read_text()):
            ids.add(message[0] if isinstance(message, tuple) else message)
    source = (GATEWAY / "routes_widget.py").read_text()
    for match in re.finditer(r'_\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\)', source):
        ids.add("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(1))))
    return ids


def test_every_widget_string_has_a_chinese_translation():
    with (GATEWAY / "translations" / "zh_CN" / "LC_MESSAGES" / "widget.po").open("rb") as handle:
        catalog = read_po(handle, locale="zh_CN")
    translated = {(m.id[0] if isinstance(m.id, tuple) else m.id) for m in catalog if m.id and m.string
                  and all(m.string if isinstance(m.string, tuple) else [m.string])}
    missing = widget_msgids() - translated
    assert not missing, f"untranslated: {sorted(missing)}"
