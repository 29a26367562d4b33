"""Public search documents: one definition per document type, and the builder that guards the index.

Both backends derive their schema from these definitions (Elasticsearch mappings, the embedded metadata table), so a
field is declared once. The builder is the only way to make a `SearchDocument`; it refuses anything that must not be
public: comments that are not approved, and anything that is, or looks like, personal contact data.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DOCUMENT_DEFINITIONS",
    "DOCUMENT_FAMILIES",
    "DOCUMENT_TYPES",
    "ENVELOPE_FIELDS",
    "FACET_FIELDS",
    "LANGUAGES",
    "DocumentDefinition",
    "DocumentRefused",
    "FieldSpec",
    "FieldType",
    "InvalidDocument",
    "NotPublic",
    "PersonalDataRefused",
    "SearchDocument",
    "all_field_specs",
    "build_document",
    "document_from_source",
]


class FieldType(enum.StrEnum):
    KEYWORD = "keyword"
    TEXT = "text"
    DATE = "date"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    analysed: bool = False
    facetable: bool = False
    multi_valued: bool = False
    required: bool = False


@dataclass(frozen=True)
class DocumentDefinition:
    doc_type: str
    family: str
    fields: tuple[FieldSpec, ...]
    description: str = ""

    def field(self, name: str) -> FieldSpec | None:
        for spec in self.fields:
            if spec.name == name:
                return spec
        return None

    @property
    def field_names(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self.fields)


class InvalidDocument(ValueError):
    """A document that cannot be indexed; `errors` maps field names to messages."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in sorted(self.errors.items())))


class DocumentRefused(InvalidDocument):
    """The input is well formed but must never become public."""


class NotPublic(DocumentRefused):
    """Only approved comments are public; pending or rejected ones never reach the index."""


class PersonalDataRefused(DocumentRefused):
    """Contact data (phone, e-mail, ID numbers, addresses) is never indexed."""


LANGUAGES = ("zh", "en")

# The envelope every document shares. Filterable fields live here too so both backends can filter and facet on them
# without knowing the document type.
ENVELOPE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("doc_id", FieldType.KEYWORD, required=True),
    FieldSpec("doc_type", FieldType.KEYWORD, facetable=True, required=True),
    FieldSpec("version", FieldType.INTEGER, required=True),
    FieldSpec("title", FieldType.TEXT, analysed=True, required=True),
    FieldSpec("body", FieldType.TEXT, analysed=True),
    FieldSpec("url", FieldType.KEYWORD, required=True),
    FieldSpec("language", FieldType.KEYWORD, facetable=True),
    FieldSpec("published_at", FieldType.DATE, required=True),
    FieldSpec("department", FieldType.KEYWORD, facetable=True),
    FieldSpec("topics", FieldType.KEYWORD, facetable=True, multi_valued=True),
    FieldSpec("policy_id", FieldType.KEYWORD),
    FieldSpec("clause_number", FieldType.INTEGER),
    FieldSpec("consultation_state", FieldType.KEYWORD, facetable=True),
    FieldSpec("outlet", FieldType.KEYWORD, facetable=True),
    FieldSpec("stance", FieldType.KEYWORD),
)

# Facet names as the API shows them, mapped to the document field they count.
FACET_FIELDS: dict[str, str] = {
    "doc_type": "doc_type",
    "department": "department",
    "topic": "topics",
    "outlet": "outlet",
    "language": "language",
    "consultation_state": "consultation_state",
}

_ENVELOPE_NAMES = frozenset(spec.name for spec in ENVELOPE_FIELDS)


def _definition(doc_type: str, family: str, description: str, *extra: FieldSpec, **required: bool) -> DocumentDefinition:
    fields = []
    for spec in ENVELOPE_FIELDS:
        if spec.name in required:
            spec = FieldSpec(spec.name, spec.type, spec.analysed, spec.facetable, spec.multi_valued, required[spec.name])
        fields.append(spec)
    return DocumentDefinition(doc_type, family, tuple(fields) + extra, description)


DOCUMENT_DEFINITIONS: dict[str, DocumentDefinition] = {
    definition.doc_type: definition
    for definition in (
        _definition(
            "policy", "content", "A published draft policy under (or after) consultation.",
            FieldSpec("document_number", FieldType.KEYWORD),
            FieldSpec("summary", FieldType.TEXT, analysed=True),
            department=True, policy_id=True,
        ),
        _definition(
            "clause", "content", "One clause (第一条 …) of a published draft.",
            policy_id=True, clause_number=True,
        ),
        _definition(
            "explanation", "content", "An official explanation (政策解读) of a draft.",
            policy_id=True,
        ),
        _definition(
            "article", "content", "A news article from an ingested feed.",
            FieldSpec("author", FieldType.KEYWORD),
            outlet=True,
        ),
        _definition(
            "comment", "discussion", "An approved, already redacted citizen comment.",
            FieldSpec("support_count", FieldType.INTEGER),
            policy_id=True,
        ),
        _definition(
            "reply", "discussion", "An official reply to a public comment.",
            FieldSpec("comment_id", FieldType.KEYWORD),
            policy_id=True,
        ),
    )
}

DOCUMENT_TYPES: tuple[str, ...] = tuple(DOCUMENT_DEFINITIONS)
DOCUMENT_FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(d.family for d in DOCUMENT_DEFINITIONS.values()))


def all_field_specs() -> dict[str, FieldSpec]:
    """Every field of every document type, by name; the union both backends build their schema from."""
    specs: dict[str, FieldSpec] = {}
    for definition in DOCUMENT_DEFINITIONS.values():
        for spec in definition.fields:
            known = specs.setdefault(spec.name, spec)
            if known.type != spec.type:
                raise AssertionError(f"field {spec.name} has two types: {known.type} and {spec.type}")
    return specs


# Field names that are contact data, or look like it. Matched on the name with separators removed, so
# "contactPhone", "phone_number", "e-mail" and "id_card_no" are all caught.
_PERSONAL_FIELD_NAME = re.compile(
    r"contact|phone|mobile|tel(ephone)?$|email|mail|idnumber|idcard|idno|identity|identification|passport|"
    r"address|wechat|weixin|qq$|身份证|手机|电话|邮箱|联系|地址"
)

# Values that still carry personal data. Comments must reach the index already redacted by moderation; if one does
# not, refusing it is safer than publishing a phone number.
_PERSONAL_VALUE_PATTERNS = {
    "an e-mail address": re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"),
    "a mobile phone number": re.compile(r"(?<!\d)(\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)"),
    "an ID card number": re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])"),
}

_DOC_TYPES_WITH_PRIVATE_AUTHORS = frozenset({"comment"})
_ID_PART = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_MAX_TITLE = 1000
_MAX_BODY = 1_000_000


def _looks_personal(name: str) -> bool:
    return bool(_PERSONAL_FIELD_NAME.search(re.sub(r"[\s_\-.]", "", name).lower()))


@dataclass(frozen=True)
class SearchDocument:
    doc_id: str
    doc_type: str
    version: int
    title: str
    body: str
    url: str
    language: str
    published_at: datetime
    department: str | None = None
    topics: tuple[str, ...] = ()
    policy_id: str | None = None
    clause_number: int | None = None
    consultation_state: str | None = None
    outlet: str | None = None
    stance: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return DOCUMENT_DEFINITIONS[self.doc_type].family

    def to_source(self) -> dict[str, Any]:
        """The stored form: JSON-ready, dates as ISO 8601 in UTC."""
        source = {
            "doc_id": self.doc_id,
            "doc_type": self.doc_type,
            "version": self.version,
            "title": self.title,
            "body": self.body,
            "url": self.url,
            "language": self.language,
            "published_at": format_datetime(self.published_at),
            "department": self.department,
            "topics": list(self.topics),
            "policy_id": self.policy_id,
            "clause_number": self.clause_number,
            "consultation_state": self.consultation_state,
            "outlet": self.outlet,
            "stance": self.stance,
        }
        source.update(self.extra)
        return source


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a fixed width, so the text sorts in time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def document_from_source(source: Mapping[str, Any]) -> SearchDocument:
    """Rebuild a stored document (e.g. for a reindex from one backend into another); validated like new input."""
    data = dict(source)
    doc_type = data.pop("doc_type", None)
    if doc_type == "comment":
        data.setdefault("status", "approved")
    return build_document(doc_type, data)


def build_document(doc_type: Any, data: Mapping[str, Any]) -> SearchDocument:
    """Validate `data` for a document of `doc_type` and build it, or raise InvalidDocument with field messages.

    `data` holds the envelope fields plus the type's own fields; comments also carry `status`, which must be
    "approved". `doc_id` may be omitted when the type's id can be derived (e.g. "clause:12:3").
    """
    if not isinstance(data, Mapping):
        raise InvalidDocument({"data": "must be a mapping of field names to values"})
    definition = DOCUMENT_DEFINITIONS.get(doc_type) if isinstance(doc_type, str) else None
    if definition is None:
        raise InvalidDocument({"doc_type": f"must be one of {', '.join(DOCUMENT_TYPES)}"})

    personal = sorted(name for name in data if isinstance(name, str) and _looks_personal(name))
    if personal:
        raise PersonalDataRefused({name: "contact data is never indexed" for name in personal})

    values = dict(data)
    if definition.doc_type == "comment":
        status = values.pop("status", None)
        if status != "approved":
            raise NotPublic({"status": f"only approved comments are public (got {status!r})"})
    else:
        values.pop("status", None)
    values.pop("doc_type", None)

    errors: dict[str, str] = {}
    unknown = sorted(str(name) for name in values if name not in definition.field_names)
    for name in unknown:
        errors[name] = f"is not a field of {definition.doc_type} documents"

    cleaned: dict[str, Any] = {}
    for spec in definition.fields:
        if spec.name in ("doc_type", "doc_id"):
            continue
        raw = values.get(spec.name)
        if raw is None or raw == "" or (spec.multi_valued and raw in ((), [])):
            if spec.required:
                errors[spec.name] = "is required"
            continue
        try:
            cleaned[spec.name] = _clean_value(spec, raw)
        except ValueError as exc:
            errors[spec.name] = str(exc)

    title = cleaned.get("title", "")
    body = cleaned.get("body", "")
    if len(title) > _MAX_TITLE:
        errors["title"] = f"must be at most {_MAX_TITLE} characters"
    if len(body) > _MAX_BODY:
        errors["body"] = f"must be at most {_MAX_BODY} characters"
    if "version" in cleaned and cleaned["version"] < 0:
        errors["version"] = "must be zero or more"

    language = cleaned.get("language")
    if language is None:
        language = "zh" if _CJK.search(title + body[:2000]) else "en"
    elif language not in LANGUAGES:
        errors["language"] = f"must be one of {', '.join(LANGUAGES)}"

    doc_id = values.get("doc_id")
    expected_prefix = f"{definition.doc_type}:"
    if doc_id is None and not errors:
        doc_id = _derive_doc_id(definition.doc_type, cleaned, errors)
    elif doc_id is not None:
        if not isinstance(doc_id, str) or not doc_id.startswith(expected_prefix) or len(doc_id) > 200:
            errors["doc_id"] = f"must be a string starting with {expected_prefix!r}, at most 200 characters"

    if definition.doc_type in _DOC_TYPES_WITH_PRIVATE_AUTHORS and not errors:
        for name in ("title", "body"):
            for what, pattern in _PERSONAL_VALUE_PATTERNS.items():
                if pattern.search(cleaned.get(name, "")):
                    raise PersonalDataRefused({name: f"contains {what}; redact it before publishing"})

    if errors:
        raise InvalidDocument(errors)

    extra = {
        spec.name: cleaned[spec.name]
        for spec in definition.fields
        if spec.name not in _ENVELOPE_NAMES and spec.name in cleaned
    }
    return SearchDocument(
        doc_id=doc_id,
        doc_type=definition.doc_type,
        version=cleaned["version"],
        title=title,
        body=body,
        url=cleaned["url"],
        language=language,
        published_at=cleaned["published_at"],
        department=cleaned.get("department"),
        topics=cleaned.get("topics", ()),
        policy_id=cleaned.get("policy_id"),
        clause_number=cleaned.get("clause_number"),
        consultation_state=cleaned.get("consultation_state"),
        outlet=cleaned.get("outlet"),
        stance=cleaned.get("stance"),
        extra=extra,
    )


def _derive_doc_id(doc_type: str, cleaned: Mapping[str, Any], errors: dict[str, str]) -> str | None:
    if doc_type == "policy":
        return f"policy:{cleaned['policy_id']}"
    if doc_type == "clause":
        return f"clause:{cleaned['policy_id']}:{cleaned['clause_number']}"
    errors["doc_id"] = f"is required for {doc_type} documents (e.g. '{doc_type}:42')"
    return None


def _clean_value(spec: FieldSpec, raw: Any) -> Any:
    if spec.multi_valued:
        if isinstance(raw, str) or not isinstance(raw, list | tuple | set | frozenset):
            raise ValueError("must be a list")
        items = tuple(dict.fromkeys(_clean_scalar(spec, item) for item in raw))
        if len(items) > 50:
            raise ValueError("must have at most 50 values")
        return items
    return _clean_scalar(spec, raw)


def _clean_scalar(spec: FieldSpec, raw: Any) -> Any:
    kind = spec.type
    if kind in (FieldType.KEYWORD, FieldType.TEXT):
        if isinstance(raw, int) and not isinstance(raw, bool) and kind is FieldType.KEYWORD:
            raw = str(raw)
        if not isinstance(raw, str):
            raise ValueError("must be a string")
        value = raw.strip() if kind is FieldType.KEYWORD else raw
        if kind is FieldType.KEYWORD and len(value) > 512:
            raise ValueError("must be at most 512 characters")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if spec.name == "policy_id" and not _ID_PART.match(value):
            raise ValueError("must be 1-64 letters, digits, '_', '-' or '.'")
        return value
    if kind is FieldType.INTEGER:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError("must be an integer")
        if not -(2**63) <= raw < 2**63:
            raise ValueError("is out of range")
        return raw
    if kind is FieldType.FLOAT:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError("must be a number")
        return float(raw)
    if kind is FieldType.BOOLEAN:
        if not isinstance(raw, bool):
            raise ValueError("must be true or false")
        return raw
    if kind is FieldType.DATE:
        if isinstance(raw, str):
            try:
                raw = datetime.fromisoformat(raw)
            except ValueError:
                raise ValueError("must be an ISO 8601 date-time with a time zone") from None
        if not isinstance(raw, datetime):
            raise ValueError("must be a date-time")
        if raw.tzinfo is None or raw.utcoffset() is None:
            raise ValueError("must carry a time zone (aware datetime)")
        return raw.astimezone(UTC)
    raise AssertionError(f"unhandled field type {kind}")
