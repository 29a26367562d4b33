"""Rebuilding the index from the owning services: their public read models turned into search documents.

The callers (`consultation`, `newsfeed`) are anything with the services' RPC methods, so the walk is testable with
plain objects; the search service passes RPC proxies.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from consultation.sanitize import html_to_text
from search import indexing
from search.documents import SearchDocument

PAGE_SIZE = 100


def _paged(fetch, payload) -> Iterator[dict]:
    page = 1
    while True:
        result = fetch({**payload, "page": page, "page_size": PAGE_SIZE}, None)
        yield from result["items"]
        if page * PAGE_SIZE >= result["total"] or not result["items"]:
            return
        page += 1


def policy_payload(detail: dict, now: datetime) -> dict:
    return {
        "policy_id": detail["policy_id"], "version": detail["version"], "title": detail["title"],
        "summary": detail.get("summary") or "", "department": detail["department"],
        "topics": detail.get("topics") or [], "document_number": detail.get("document_number"),
        "language": detail["language"], "state": detail["state"], "published_at": detail["published_at"],
        "preamble": detail.get("preamble") or "", "url_path": detail["url_path"], "occurred_at": now,
        "clauses": [{"number": c["number"], "label": c["label"], "text": c["text"]} for c in detail["clauses"]],
    }


def consultation_documents(consultation, now: datetime) -> Iterator[SearchDocument]:
    for summary in _paged(consultation.list_policies, {}):
        detail = consultation.get_policy({"policy_id": summary["policy_id"]}, None)
        yield from indexing.policy_documents(policy_payload(detail, now))
        for comment in _paged(consultation.list_public_comments, {"policy_id": detail["policy_id"]}):
            yield indexing.comment_document({**comment, "status": "approved", "occurred_at": now,
                                             "url_path": f"{detail['url_path']}#comment-{comment['comment_id']}"})
            for reply in comment.get("replies") or ():
                yield indexing.reply_document({
                    **reply, "comment_id": comment["comment_id"], "policy_id": detail["policy_id"],
                    "clause_number": comment.get("clause_number"), "language": comment.get("language"),
                    "url_path": f"{detail['url_path']}#comment-{comment['comment_id']}", "occurred_at": now,
                })
        for explanation in consultation.list_explanations({"policy_id": detail["policy_id"]}, None):
            yield indexing.explanation_document({
                **explanation, "body": html_to_text(explanation.get("body_html") or ""),
                "department": detail["department"], "topics": detail.get("topics") or [],
                "url_path": detail["url_path"], "occurred_at": now,
            })


def article_documents(newsfeed) -> Iterator[SearchDocument]:
    after = None
    while True:
        page = newsfeed.list_articles({"after": after, "limit": 500} if after else {"limit": 500})
        for article in page["items"]:
            yield indexing.article_document(article)
        after = page.get("next_after")
        if not after:
            return


def all_public_documents(consultation, newsfeed, now: datetime) -> Iterator[SearchDocument]:
    yield from consultation_documents(consultation, now)
    yield from article_documents(newsfeed)
