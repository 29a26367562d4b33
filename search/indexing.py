"""From event payloads of the owning services to public search documents.

Document versions come from the event time (milliseconds) for consultation content, so a later state always wins
and a redelivered event is a no-op; articles carry their own version.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from search.documents import LANGUAGES, SearchDocument, build_document

OPEN_STATES = ("open",)
PROFILE_STATES = ("scheduled", "open")
UNPUBLISHED_STATES = ("withdrawn",)


def parse_time(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def event_version(payload: Mapping[str, Any]) -> int:
    return int(parse_time(payload["occurred_at"]).timestamp() * 1000)


def policy_documents(payload: Mapping[str, Any]) -> list[SearchDocument]:
    version = event_version(payload)
    policy_id = str(payload["policy_id"])
    common = {
        "version": version,
        "language": payload["language"],
        "published_at": payload["published_at"],
        "department": payload["department"],
        "topics": list(payload.get("topics") or ()),
        "policy_id": policy_id,
        "consultation_state": payload["state"],
    }
    clauses = payload.get("clauses") or []
    body = "\n".join([payload.get("summary") or "", payload.get("preamble") or ""] + [c["text"] for c in clauses])
    documents = [
        build_document("policy", {
            **common,
            "doc_id": f"policy:{policy_id}",
            "title": payload["title"],
            "body": body.strip(),
            "summary": payload.get("summary") or "",
            "document_number": payload.get("document_number"),
            "url": payload["url_path"],
        })
    ]
    for clause in clauses:
        documents.append(build_document("clause", {
            **common,
            "doc_id": f"clause:{policy_id}:{clause['number']}",
            "title": f"{payload['title']} {clause['label']}",
            "body": clause["text"],
            "clause_number": clause["number"],
            "url": f"{payload['url_path']}#clause-{clause['number']}",
        }))
    return documents


def stale_clause_ids(payload: Mapping[str, Any], previous_clause_numbers) -> list[str]:
    """Clause documents of an earlier version whose numbers no longer exist."""
    current = {clause["number"] for clause in payload.get("clauses") or []}
    return [f"clause:{payload['policy_id']}:{n}" for n in previous_clause_numbers if n not in current]


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def index_language(language: str | None, text: str) -> str:
    """The index analyses zh and en; other languages (ja, de, …) go to the analysis their script needs."""
    if language in LANGUAGES:
        return language
    return "zh" if _CJK.search(text or "") else "en"


def article_document(payload: Mapping[str, Any]) -> SearchDocument:
    return build_document("article", {
        "doc_id": f"article:{payload['id']}",
        "version": int(payload["version"]),
        "title": payload["title"],
        "body": payload.get("text") or payload.get("summary") or "",
        "url": payload.get("url") or "",
        "language": index_language(payload.get("language"), payload["title"]),
        "published_at": payload["published_at"],
        "outlet": payload.get("outlet"),
        "topics": list(payload.get("categories") or ()),
    })


def comment_document(payload: Mapping[str, Any]) -> SearchDocument:
    """Only an approved comment becomes a document; build_document refuses any other status."""
    return build_document("comment", {
        "doc_id": f"comment:{payload['comment_id']}",
        "status": payload["status"],
        "version": event_version(payload),
        "title": (payload.get("text") or "")[:60],
        "body": payload.get("text") or "",
        "url": payload["url_path"],
        "language": payload.get("language") or "zh",
        "published_at": payload["created_at"],
        "policy_id": str(payload["policy_id"]),
        "clause_number": payload.get("clause_number"),
        "stance": payload["stance"],
    })


def reply_document(payload: Mapping[str, Any]) -> SearchDocument:
    return build_document("reply", {
        "doc_id": f"reply:{payload['reply_id']}",
        "version": event_version(payload),
        "title": (payload.get("text") or "")[:60],
        "body": payload["text"],
        "url": payload["url_path"],
        "language": payload.get("language") or "zh",
        "published_at": payload["created_at"],
        "policy_id": str(payload["policy_id"]),
        "clause_number": payload.get("clause_number"),
        "comment_id": str(payload["comment_id"]),
    })


def explanation_document(payload: Mapping[str, Any]) -> SearchDocument:
    return build_document("explanation", {
        "doc_id": f"explanation:{payload['explanation_id']}",
        "version": event_version(payload),
        "title": payload["title"],
        "body": payload.get("body") or "",
        "url": payload.get("url") or payload["url_path"],
        "language": payload["language"],
        "published_at": payload["published_at"],
        "department": payload.get("department"),
        "topics": list(payload.get("topics") or ()),
        "policy_id": str(payload["policy_id"]),
        "outlet": payload.get("outlet"),
    })
