"""The search query: a pure value, parsed and validated from request parameters.

Backends translate a `SearchQuery` into their own language (FTS5 MATCH expressions, Elasticsearch bodies); nothing
here knows about either.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from search.documents import DOCUMENT_TYPES, LANGUAGES

__all__ = [
    "DEFAULT_PER_PAGE",
    "DEFAULT_TIMEZONE",
    "MAX_PER_PAGE",
    "MAX_QUERY_LENGTH",
    "MAX_RESULT_WINDOW",
    "SORTS",
    "InvalidSearchQuery",
    "QueryText",
    "SearchFilters",
    "SearchQuery",
    "parse_query_text",
    "parse_search_params",
]

MAX_QUERY_LENGTH = 500
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
# Deep paging costs both backends dearly and Elasticsearch refuses past index.max_result_window (10,000 by default).
MAX_RESULT_WINDOW = 10_000
SORTS = ("relevance", "date")
# Plain dates (2026-02-01) are days as the public reads them; most consultations run on Beijing time.
DEFAULT_TIMEZONE = ZoneInfo("Asia/Shanghai")

# ASCII quotes and the full-width/curly quotes a Chinese input method produces.
_PHRASE = re.compile(r'"([^"]*)"|“([^”]*)”|「([^」]*)」')
_STRAY_QUOTES = re.compile(r'["“”「」]')
_KEYWORD_VALUE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
_ID_VALUE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CJK_CHAR = "\u3400-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK_CHAR}])\s+(?=[{_CJK_CHAR}])")


class InvalidSearchQuery(ValueError):
    """Bad search parameters; `errors` maps parameter names to messages."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        # args are the constructor's own argument, so the exception survives an RPC hop (rebuilt as cls(*args))
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "; ".join(f"{name}: {message}" for name, message in sorted(self.errors.items()))


@dataclass(frozen=True)
class QueryText:
    """The user's text split into quoted phrases (kept whole) and the remaining free words."""

    phrases: tuple[str, ...] = ()
    words: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.phrases and not self.words.strip()


@dataclass(frozen=True)
class SearchFilters:
    doc_type: tuple[str, ...] = ()
    department: str | None = None
    topic: str | None = None
    policy_id: str | None = None
    consultation_state: str | None = None
    outlet: str | None = None
    language: str | None = None
    # Inclusive lower bound and exclusive upper bound, both aware UTC datetimes.
    date_from: datetime | None = None
    date_to: datetime | None = None

    def keyword_filters(self) -> dict[str, str]:
        """Single-valued exact-match filters by document field name (topic filters the `topics` field)."""
        pairs = {
            "department": self.department,
            "topics": self.topic,
            "policy_id": self.policy_id,
            "consultation_state": self.consultation_state,
            "outlet": self.outlet,
            "language": self.language,
        }
        return {name: value for name, value in pairs.items() if value is not None}


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    filters: SearchFilters = field(default_factory=SearchFilters)
    sort: str = "relevance"
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def __post_init__(self) -> None:
        # Code may build a SearchQuery directly; it gets the same limits as request parameters.
        errors: dict[str, str] = {}
        if not isinstance(self.text, str) or len(self.text) > MAX_QUERY_LENGTH:
            errors["q"] = f"must be a string of at most {MAX_QUERY_LENGTH} characters"
        if self.sort not in SORTS:
            errors["sort"] = f"must be one of {', '.join(SORTS)}"
        if not isinstance(self.page, int) or self.page < 1:
            errors["page"] = "must be at least 1"
        if not isinstance(self.per_page, int) or not 1 <= self.per_page <= MAX_PER_PAGE:
            errors["per_page"] = f"must be between 1 and {MAX_PER_PAGE}"
        if errors:
            raise InvalidSearchQuery(errors)

    @property
    def parsed_text(self) -> QueryText:
        return parse_query_text(self.text)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def effective_sort(self) -> str:
        """Relevance means nothing without text: a browse is newest first."""
        return "date" if self.parsed_text.is_empty else self.sort


def parse_query_text(text: str) -> QueryText:
    """Split quoted phrases ("医疗保障 改革", “医疗保障改革”) from the free words; an unpaired quote is ignored.

    Spaces between Chinese characters inside a phrase are dropped; spaces between other words are kept.
    """
    phrases: list[str] = []

    def keep_phrase(match: re.Match[str]) -> str:
        phrase = " ".join(next(group for group in match.groups() if group is not None).split())
        # Chinese is written without spaces: "医疗保障 改革" stands in the text as 医疗保障改革, and a bigram analyser
        # would otherwise see a gap where the text has none.
        phrase = _SPACE_BETWEEN_CJK.sub("", phrase)
        if phrase and phrase not in phrases:
            phrases.append(phrase)
        return " "

    rest = _PHRASE.sub(keep_phrase, text)
    words = " ".join(_STRAY_QUOTES.sub(" ", rest).split())
    return QueryText(tuple(phrases), words)


_KNOWN_PARAMS = frozenset({
    "q", "doc_type", "department", "topic", "policy_id", "consultation_state", "outlet", "language",
    "date_from", "date_to", "sort", "page", "per_page",
})


def parse_search_params(params: Mapping[str, Any]) -> SearchQuery:
    """Build a SearchQuery from request parameters (strings, or lists of strings from a multi-dict).

    Raises InvalidSearchQuery with a message per bad parameter; unknown parameter names are errors too, so a typo
    (per-page) is reported instead of silently ignored.
    """
    if not isinstance(params, Mapping):
        raise InvalidSearchQuery({"params": "must be a mapping of parameter names to values"})
    errors: dict[str, str] = {}
    for name in params:
        if name not in _KNOWN_PARAMS:
            errors[str(name)] = "is not a search parameter"

    def single(name: str) -> str | None:
        value = params.get(name)
        if isinstance(value, list | tuple):
            if len(value) > 1:
                errors[name] = "must be given once"
                return None
            value = value[0] if value else None
        if value is None:
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            errors[name] = "must be a string"
            return None
        value = str(value).strip()
        return value or None

    text = single("q") or ""
    text = _CONTROL.sub(" ", text)
    if len(text) > MAX_QUERY_LENGTH:
        errors["q"] = f"must be at most {MAX_QUERY_LENGTH} characters"
        text = ""

    doc_types: tuple[str, ...] = ()
    raw_doc_type = params.get("doc_type")
    if raw_doc_type is not None:
        items = raw_doc_type if isinstance(raw_doc_type, list | tuple) else [raw_doc_type]
        names: list[str] = []
        for item in items:
            if not isinstance(item, str):
                errors["doc_type"] = "must be a string"
                break
            names.extend(part.strip() for part in item.split(",") if part.strip())
        bad = [name for name in names if name not in DOCUMENT_TYPES]
        if bad:
            errors["doc_type"] = f"unknown type {bad[0]!r}; must be among {', '.join(DOCUMENT_TYPES)}"
        doc_types = tuple(dict.fromkeys(names))

    def keyword(name: str, pattern: re.Pattern[str] = _KEYWORD_VALUE) -> str | None:
        value = single(name)
        if value is not None and not pattern.match(value):
            errors[name] = "has invalid characters or is too long"
            return None
        return value

    department = keyword("department")
    topic = keyword("topic")
    policy_id = keyword("policy_id", _ID_VALUE)
    consultation_state = keyword("consultation_state")
    outlet = keyword("outlet")
    language = single("language")
    if language is not None and language not in LANGUAGES:
        errors["language"] = f"must be one of {', '.join(LANGUAGES)}"

    date_from = _parse_bound(single("date_from"), "date_from", errors, end_of_day=False)
    date_to = _parse_bound(single("date_to"), "date_to", errors, end_of_day=True)
    if date_from and date_to and date_from >= date_to:
        errors["date_to"] = "must be after date_from"

    sort = single("sort") or "relevance"
    if sort not in SORTS:
        errors["sort"] = f"must be one of {', '.join(SORTS)}"

    page = _parse_int(single("page"), "page", errors, default=1, minimum=1)
    per_page = _parse_int(single("per_page"), "per_page", errors, default=DEFAULT_PER_PAGE, minimum=1)
    if "per_page" not in errors and per_page > MAX_PER_PAGE:
        errors["per_page"] = f"must be at most {MAX_PER_PAGE}"
    if "page" not in errors and "per_page" not in errors and page * per_page > MAX_RESULT_WINDOW:
        errors["page"] = f"too deep: page × per_page must be at most {MAX_RESULT_WINDOW}; narrow the search instead"

    if errors:
        raise InvalidSearchQuery(errors)
    return SearchQuery(
        text=text,
        filters=SearchFilters(
            doc_type=doc_types,
            department=department,
            topic=topic,
            policy_id=policy_id,
            consultation_state=consultation_state,
            outlet=outlet,
            language=language,
            date_from=date_from,
            date_to=date_to,
        ),
        sort=sort,
        page=page,
        per_page=per_page,
    )


def _parse_int(value: str | None, name: str, errors: dict[str, str], *, default: int, minimum: int) -> int:
    if value is None:
        return default
    if not re.fullmatch(r"[+-]?\d{1,9}", value):
        errors[name] = "must be a whole number"
        return default
    number = int(value)
    if number < minimum:
        errors[name] = f"must be at least {minimum}"
        return default
    return number


def _parse_bound(value: str | None, name: str, errors: dict[str, str], *, end_of_day: bool) -> datetime | None:
    """A plain date is a whole day in DEFAULT_TIMEZONE; a date-time must carry its offset."""
    if value is None:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            errors[name] = "is not a real date (YYYY-MM-DD)"
            return None
        if end_of_day:
            day += timedelta(days=1)
        return datetime.combine(day, time(), DEFAULT_TIMEZONE).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors[name] = "must be a date (YYYY-MM-DD) or an ISO 8601 date-time with offset"
        return None
    if moment.tzinfo is None:
        errors[name] = "a date-time must carry a time zone offset (e.g. +08:00)"
        return None
    # The bound is stored exclusive; a given end instant is meant to be included.
    return moment.astimezone(UTC) + (timedelta(microseconds=1) if end_of_day else timedelta())
