"""Splitting a pasted draft policy into preamble, chapters, sections and numbered clauses.

Policy officers paste whole drafts from Word or web pages. Chinese drafts number their clauses 第一条, 第二条 … and group
them into 第一章 / 第一节; English drafts use "Article 1", "Section 1", "§ 1" or plain "1." numbering. A heading only
counts at the start of a line: "依照本法第三条规定" inside a sentence is a cross-reference, not a new clause.

Parsing never raises on text input: numbering problems (gaps, duplicates, going backwards) are reported as warnings and
the clauses are kept as written, so the officer can see and fix the draft instead of losing text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

__all__ = [
    "Chapter",
    "Clause",
    "DraftWarning",
    "ParsedDraft",
    "Section",
    "chinese_numeral_to_int",
    "detect_language",
    "int_to_chinese_numeral",
    "parse_draft",
]

SUPPORTED_LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class Chapter:
    number: int
    label: str  # as written, e.g. "第一章" or "Chapter I"
    title: str  # e.g. "总则"; may be empty
    intro: str = ""  # text between the heading and the first clause or section, if a draft has any

    @property
    def heading(self) -> str:
        return f"{self.label} {self.title}" if self.title else self.label


@dataclass(frozen=True)
class Section:
    number: int
    label: str  # e.g. "第一节"
    title: str
    chapter: str | None  # heading of the enclosing chapter
    intro: str = ""  # text between the heading and the first clause

    @property
    def heading(self) -> str:
        return f"{self.label} {self.title}" if self.title else self.label


@dataclass(frozen=True)
class Clause:
    number: int  # as written, 1-based
    label: str  # heading as written, e.g. "第三条", "Article 3", "§ 3", "3."
    chapter: str | None  # heading of the enclosing chapter, e.g. "第一章 总则"
    text: str  # body without the heading; lines trimmed, blank lines dropped
    section: str | None = None  # heading of the enclosing section, e.g. "第一节 一般规定"


@dataclass(frozen=True)
class DraftWarning:
    code: str  # "numbering_gap" | "duplicate_number" | "numbering_backwards" | "no_clauses" | "empty_text"
    message: str
    clause_index: int | None = None  # position in ParsedDraft.clauses the warning is about


@dataclass(frozen=True)
class ParsedDraft:
    preamble: str  # text before the first heading, verbatim
    chapters: tuple[Chapter, ...]
    clauses: tuple[Clause, ...]
    language: str  # "zh" or "en"
    warnings: tuple[DraftWarning, ...] = ()
    sections: tuple[Section, ...] = ()


# --- Chinese numerals -------------------------------------------------------------------------------------------------

_CHINESE_DIGITS = {
    "〇": 0, "零": 0, "○": 0, "Ｏ": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
    "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9,
}  # fmt: skip
_SMALL_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_LARGE_UNITS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
_DIGIT_CHARS = "零一二三四五六七八九"
_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def _digit_value(char: str) -> int | None:
    if char in _CHINESE_DIGITS:
        return _CHINESE_DIGITS[char]
    if char.isascii() and char.isdigit():
        return int(char)
    if "０" <= char <= "９":
        return ord(char) - ord("０")
    return None


def chinese_numeral_to_int(numeral: str) -> int:
    """Value of a Chinese numeral such as "十二", "一百零一", "两千", "二〇二六" or an Arabic/full-width number.

    Raises ValueError for anything that is not a numeral.
    """
    if not isinstance(numeral, str):
        raise TypeError(f"expected str, got {type(numeral).__name__}")
    text = numeral.strip()
    if not text:
        raise ValueError("empty numeral")
    values = [_digit_value(c) for c in text]
    if all(v is not None for v in values):
        # Positional form ("二〇二六", "12", "１２"): each character is one decimal digit.
        return int("".join(str(v) for v in values))

    total = 0  # completed 亿 / 万 groups
    group = 0  # value below the current large unit
    digit: int | None = None
    last_unit = 0  # the unit just applied, for the colloquial "一百一" (= 110)
    zero_since_unit = False
    for char in text:
        value = _digit_value(char)
        if value is not None:
            if digit is not None:
                raise ValueError(f"not a Chinese numeral: {numeral!r}")
            if value == 0:
                zero_since_unit = True
            else:
                digit = value
        elif char in _SMALL_UNITS:
            unit = _SMALL_UNITS[char]
            # A bare leading 十 means one ten ("十二" = 12), also after a large unit ("一万十" is rare but readable).
            group += (1 if digit is None else digit) * unit
            digit = None
            last_unit = unit
            zero_since_unit = False
        elif char in _LARGE_UNITS:
            unit = _LARGE_UNITS[char]
            group += digit or 0
            if group == 0 and total == 0:
                raise ValueError(f"not a Chinese numeral: {numeral!r}")
            if unit == 10**8:
                total = (total + group) * unit
            else:
                total += group * unit
            group = 0
            digit = None
            last_unit = unit
            zero_since_unit = False
        else:
            raise ValueError(f"not a Chinese numeral: {numeral!r}")
    if digit is not None:
        if last_unit >= 100 and not zero_since_unit:
            digit *= last_unit // 10
        group += digit
    return total + group


def _four_digits_to_chinese(value: int, leading: bool) -> str:
    """0 < value < 10000; ``leading`` when nothing larger precedes it (so 10..19 read "十…", not "一十…")."""
    parts: list[str] = []
    pending_zero = False
    for unit, unit_char in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = value // unit % 10
        if digit == 0:
            if parts:
                pending_zero = True
            continue
        if pending_zero:
            parts.append("零")
            pending_zero = False
        if unit == 10 and digit == 1 and leading and not parts:
            parts.append("十")
        else:
            parts.append(_DIGIT_CHARS[digit] + unit_char)
    return "".join(parts)


def int_to_chinese_numeral(number: int) -> str:
    """Chinese numeral as used in clause headings: 1 → "一", 10 → "十", 101 → "一百零一", 1010 → "一千零一十"."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise TypeError(f"expected int, got {type(number).__name__}")
    if number < 0:
        raise ValueError("negative numbers have no clause numeral")
    if number == 0:
        return "零"
    groups: list[int] = []
    rest = number
    while rest:
        groups.append(rest % 10000)
        rest //= 10000
    if len(groups) > 3:
        raise ValueError("numbers of 10^12 and above are not supported")
    group_units = ["", "万", "亿"]
    out: list[str] = []
    need_zero = False
    for index in range(len(groups) - 1, -1, -1):
        value = groups[index]
        if value == 0:
            need_zero = bool(out)
            continue
        if out and (need_zero or value < 1000):
            out.append("零")
        out.append(_four_digits_to_chinese(value, leading=not out) + group_units[index])
        need_zero = False
    return "".join(out)


# --- language detection -----------------------------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> str:
    """ "zh" when CJK characters make up a fair share of the letters, else "en" (zh when there are no letters)."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk == 0 and latin == 0:
        return "zh"
    # One Chinese character carries about as much as a short English word, hence the low threshold.
    return "zh" if cjk / (cjk + latin) >= 0.2 else "en"


def _normalise_language(language: str | None, text: str) -> str:
    if language is None:
        return detect_language(text)
    if not isinstance(language, str):
        raise TypeError(f"language must be a str or None, got {type(language).__name__}")
    primary = language.strip().lower().replace("_", "-").split("-")[0]
    if primary not in SUPPORTED_LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; expected one of {', '.join(SUPPORTED_LANGUAGES)}")
    return primary


# --- headings ---------------------------------------------------------------------------------------------------------

# Horizontal whitespace only: \s would also cross line breaks. Includes U+3000 and NBSP via the Unicode \s class.
_H = r"[^\S\r\n]"
_ZH_NUMBER = r"[〇零○一二两三四五六七八九十百千万0-9０-９]+"
# After a heading label: whitespace or a colon/full stop is an unambiguous separator.
_STRONG_SEPARATOR = re.compile(rf"^(?:{_H}|[：:．.]|$)")
# Text that continues a cross-reference when a line happens to start with one ("第三条规定的…", "第三条第二款").
_ZH_REFERENCE_CONTINUATION = ("规定", "的", "第", "款", "项", "至", "和", "或", "、", "之", "所")
_ZH_CLAUSE = re.compile(rf"^{_H}*(?P<label>第{_H}*(?P<num>{_ZH_NUMBER}){_H}*条)(?P<rest>.*)$")
_ZH_CHAPTER = re.compile(rf"^{_H}*(?P<label>第{_H}*(?P<num>{_ZH_NUMBER}){_H}*章)(?P<rest>.*)$")
_ZH_SECTION = re.compile(rf"^{_H}*(?P<label>第{_H}*(?P<num>{_ZH_NUMBER}){_H}*节)(?P<rest>.*)$")
# Notices, opinions and plans (意见, 方案) number their top-level parts "一、", "二、" instead of 第X条.
_ZH_ENUMERATED = re.compile(rf"^{_H}*(?P<label>(?P<num>[一二两三四五六七八九十百零〇]+)、)(?P<rest>.*)$")

_ROMAN = r"[IVXLCDM]+"
_EN_CHAPTER = re.compile(rf"^{_H}*(?P<label>chapter{_H}+(?P<num>[0-9]+|{_ROMAN}))\b(?P<rest>.*)$", re.I)
_EN_ARTICLE = re.compile(rf"^{_H}*(?P<label>(?:article|art\.){_H}*(?P<num>[0-9]+|{_ROMAN}))\b(?P<rest>.*)$", re.I)
_EN_SECTION = re.compile(rf"^{_H}*(?P<label>(?:section|sec\.){_H}*(?P<num>[0-9]+))\b(?P<rest>.*)$", re.I)
_EN_PARAGRAPH = re.compile(rf"^{_H}*(?P<label>§{_H}*(?P<num>[0-9]+))(?![0-9]|\.[0-9])(?P<rest>.*)$")
_EN_NUMBERED = re.compile(rf"^{_H}*(?P<label>(?P<num>[0-9]{{1,4}})[.)])(?=\s|$)(?P<rest>.*)$")
_EN_STRONG_SEPARATOR = re.compile(rf"^(?:{_H}*(?:[:.)\-–—]|$))")

# Longest heading title we believe; a longer "第二章…" line is prose that happens to start with a reference.
_MAX_TITLE_LENGTH = 40
_SENTENCE_END = ("。", "；", ";", "，", ",")
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")


def _roman_to_int(numeral: str) -> int:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    upper = numeral.upper()
    for index, char in enumerate(upper):
        value = values[char]
        if index + 1 < len(upper) and values[upper[index + 1]] > value:
            total -= value
        else:
            total += value
    return total


def _english_number(raw: str) -> int:
    return int(raw) if raw.isdigit() else _roman_to_int(raw)


def _compact_title(rest: str) -> str:
    # "第一章　总　　则" spreads short titles with full-width spaces for layout; the title itself is "总则".
    title = rest.strip().lstrip("：:．.-—").strip()
    if _CJK.search(title):
        title = re.sub(rf"(?<=[^\x00-\x7f]){_H}+(?=[^\x00-\x7f])", "", title)
    return re.sub(rf"{_H}+", " ", title)


@dataclass(frozen=True)
class _Heading:
    kind: str  # "chapter" | "section" | "clause"
    number: int
    label: str
    rest: str  # the text after the label on the same line
    strong: bool  # separated from the following text by whitespace/punctuation, or alone on its line


def _iter_lines(text: str) -> Iterator[tuple[int, str]]:
    for match in _LINE.finditer(text):
        yield match.start(), match.group().rstrip("\r\n")


def _zh_number(raw: str) -> int | None:
    try:
        return chinese_numeral_to_int(raw)
    except ValueError:
        return None


def _zh_uses_enumerated_parts(lines: list[str]) -> bool:
    """True when a Chinese draft has no 第X条 clauses but top-level parts numbered "一、", "二、" …"""
    if any((heading := _match_zh_heading(line)) and heading.kind == "clause" and heading.number == 1 for line in lines):
        return False
    return any((match := _ZH_ENUMERATED.match(line)) and match["num"] == "一" for line in lines)


def _match_zh_enumerated(line: str) -> _Heading | None:
    heading = _match_zh_heading(line)
    if heading is not None:
        return heading if heading.kind != "clause" else None
    match = _ZH_ENUMERATED.match(line)
    if not match:
        return None
    number = _zh_number(match["num"])
    # Never "strong": "一、" also starts items of lists inside a part, so only the expected next number counts.
    return _Heading("clause", number, match["label"], match["rest"], False) if number else None


def _match_zh_heading(line: str) -> _Heading | None:
    for kind, pattern in (("chapter", _ZH_CHAPTER), ("section", _ZH_SECTION), ("clause", _ZH_CLAUSE)):
        match = pattern.match(line)
        if not match:
            continue
        number = _zh_number(match["num"])
        if number is None:
            return None
        rest = match["rest"]
        label = re.sub(rf"{_H}+", "", match["label"])
        strong = bool(_STRONG_SEPARATOR.match(rest))
        if kind == "clause":
            if not strong and rest.startswith(_ZH_REFERENCE_CONTINUATION):
                return None
            return _Heading(kind, number, label, rest, strong)
        title = rest.strip()
        if len(title) > _MAX_TITLE_LENGTH or title.endswith(_SENTENCE_END):
            return None
        if not strong and rest.startswith(_ZH_REFERENCE_CONTINUATION):
            return None
        return _Heading(kind, number, label, rest, strong)
    return None


def _english_clause_pattern(lines: list[str]) -> re.Pattern[str] | None:
    """The clause numbering style of an English draft.

    Styles are tried from the most to the least explicit (Article, Section, §, "1."), so numbered lists inside articles
    do not win; a style only counts when its numbering starts at 1, which skips stray references like "§ 12".
    """
    patterns = (_EN_ARTICLE, _EN_SECTION, _EN_PARAGRAPH, _EN_NUMBERED)
    for pattern in patterns:
        if any((match := pattern.match(line)) and _english_number(match["num"]) == 1 for line in lines):
            return pattern
    for pattern in patterns:
        if any(pattern.match(line) for line in lines):
            return pattern
    return None


def _match_en_heading(line: str, clause_pattern: re.Pattern[str] | None) -> _Heading | None:
    match = _EN_CHAPTER.match(line)
    if match:
        title = _compact_title(match["rest"])
        if len(title) <= _MAX_TITLE_LENGTH * 2 and not title.endswith((".", ";", ",")):
            return _Heading("chapter", _english_number(match["num"]), _collapse(match["label"]), match["rest"], True)
    if clause_pattern is not _EN_SECTION:
        # With Article numbering, "Section 1" groups articles like 第一节 groups 条.
        match = _EN_SECTION.match(line) if clause_pattern is _EN_ARTICLE else None
        if match and len(match["rest"].strip()) <= _MAX_TITLE_LENGTH * 2:
            return _Heading("section", int(match["num"]), _collapse(match["label"]), match["rest"], True)
    if clause_pattern is None:
        return None
    match = clause_pattern.match(line)
    if not match:
        return None
    rest = match["rest"]
    strong = clause_pattern is _EN_NUMBERED or bool(_EN_STRONG_SEPARATOR.match(rest))
    return _Heading("clause", _english_number(match["num"]), _collapse(match["label"]), rest, strong)


def _collapse(label: str) -> str:
    return re.sub(rf"{_H}+", " ", label.strip())


def _clause_body_start(rest: str, language: str) -> str:
    if language == "zh":
        return rest.lstrip().lstrip("：:．.").strip()
    return rest.strip().lstrip(":.)-–—").strip()


def _join_body(lines: list[str]) -> str:
    return "\n".join(stripped for stripped in (line.strip() for line in lines) if stripped)


def parse_draft(text: str, language: str | None = None) -> ParsedDraft:
    """Split a pasted draft into preamble, chapters, sections and clauses.

    ``language`` is "zh" or "en" (region suffixes such as "zh-CN" are accepted); None detects it from the share of
    CJK characters. Raises TypeError for non-str text and ValueError for an unsupported language, never for content.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_draft expects str, got {type(text).__name__}")
    lang = _normalise_language(language, text)
    if not text.strip():
        return ParsedDraft("", (), (), lang, (DraftWarning("empty_text", "The draft is empty."),))

    lines = list(_iter_lines(text))
    line_texts = [line for _, line in lines]
    if lang == "en":
        clause_pattern = _english_clause_pattern(line_texts)
        match_heading = lambda line: _match_en_heading(line, clause_pattern)  # noqa: E731
    elif _zh_uses_enumerated_parts(line_texts):
        match_heading = _match_zh_enumerated
    else:
        match_heading = _match_zh_heading

    preamble_end: int | None = None
    chapters: list[Chapter] = []
    sections: list[Section] = []
    clauses: list[tuple[_Heading, str | None, str | None, list[str]]] = []
    current_chapter: str | None = None
    current_section: str | None = None
    body: list[str] | None = None  # lines of the open clause; None between a chapter heading and the next clause
    last_number = 0

    for offset, line in lines:
        heading = match_heading(line)
        if heading is not None and heading.kind == "clause" and not heading.strong:
            # Without a separator the line may be a wrapped cross-reference; trust it only if it continues the count.
            if heading.number != last_number + 1:
                heading = None
        if heading is None:
            if body is not None:
                body.append(line)
            elif preamble_end is not None and line.strip():
                # Prose between a chapter or section heading and its first clause belongs to no clause; it is kept as
                # that heading's intro rather than dropped.
                _append_intro(chapters, sections, line)
            continue
        if preamble_end is None:
            preamble_end = offset
        if heading.kind == "chapter" and not clauses and chapters and heading.number <= chapters[-1].number:
            # Chapter numbering that restarts before any clause means the headings so far were a table of contents
            # (目录); it belongs to the preamble.
            chapters.clear()
            sections.clear()
            preamble_end = offset
        if heading.kind == "chapter":
            chapter = Chapter(heading.number, heading.label, _compact_title(heading.rest))
            chapters.append(chapter)
            current_chapter = chapter.heading
            current_section = None
            body = None
        elif heading.kind == "section":
            section = Section(heading.number, heading.label, _compact_title(heading.rest), current_chapter)
            sections.append(section)
            current_section = section.heading
            body = None
        else:
            first = _clause_body_start(heading.rest, lang)
            body = [first] if first else []
            clauses.append((heading, current_chapter, current_section, body))
            last_number = heading.number

    if not clauses:
        whole = _join_body([line for _, line in lines])
        fallback_label = "第一条" if lang == "zh" else "Article 1"
        warning = DraftWarning(
            "no_clauses", "No numbered clauses were recognised; the whole text is kept as clause 1.", 0
        )
        return ParsedDraft("", (), (Clause(1, fallback_label, None, whole),), lang, (warning,))

    built = tuple(
        Clause(heading.number, heading.label, chapter, _join_body(body_lines), section)
        for heading, chapter, section, body_lines in clauses
    )
    preamble = text[:preamble_end] if preamble_end else ""
    return ParsedDraft(preamble, tuple(chapters), built, lang, _numbering_warnings(built), tuple(sections))


def _append_intro(chapters: list[Chapter], sections: list[Section], line: str) -> None:
    def extended(intro: str) -> str:
        return f"{intro}\n{line.strip()}" if intro else line.strip()

    # The most recent heading is the last section only if that section belongs to the last chapter.
    if sections and (not chapters or sections[-1].chapter == chapters[-1].heading):
        sections[-1] = replace(sections[-1], intro=extended(sections[-1].intro))
    elif chapters:
        chapters[-1] = replace(chapters[-1], intro=extended(chapters[-1].intro))


def _numbering_warnings(clauses: tuple[Clause, ...]) -> tuple[DraftWarning, ...]:
    warnings: list[DraftWarning] = []
    seen: set[int] = set()
    expected = 1
    for index, clause in enumerate(clauses):
        if clause.number in seen:
            warnings.append(
                DraftWarning(
                    "duplicate_number", f"Clause number {clause.number} ({clause.label}) appears twice.", index
                )
            )
        elif clause.number < expected:
            warnings.append(
                DraftWarning(
                    "numbering_backwards",
                    f"Clause {clause.label} follows clause {expected - 1}; numbering goes backwards.",
                    index,
                )
            )
        elif clause.number > expected:
            missing = f"{expected}" if clause.number == expected + 1 else f"{expected}–{clause.number - 1}"
            warnings.append(
                DraftWarning("numbering_gap", f"Clause number(s) {missing} missing before {clause.label}.", index)
            )
        seen.add(clause.number)
        expected = max(expected, clause.number + 1)
    return tuple(warnings)
