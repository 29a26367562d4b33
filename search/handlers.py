"""Use cases of the search service: keep the index in step with public content and suggest coverage links.

Everything here is idempotent (events are delivered at least once): upserts carry versions, deletes of missing
documents are no-ops, and a repeated links_suggested is merged by the consultation service.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from search import indexing
from search.backends.base import SearchBackend
from search.events import LINKS_SUGGESTED
from search.linking import InterestProfile, LinkSuggestion, analyse_article, build_profile
from search.matching import ProfileMatcher, ProfileRow
from search.queries import parse_search_params
from search.state import PolicyProfileRecord, next_profile_revision

ARTICLE_LINKS = 5  # policies suggested for one new article
COVERAGE_LINKS = 20  # articles suggested for one new policy


@dataclass
class SearchContext:
    """What the handlers work with; the service builds one per worker from its dependencies."""

    backend: SearchBackend
    profiles: ProfileMatcher
    unit_of_work: Callable  # () -> SqlUnitOfWork over the search service's own database
    link_threshold: float | None = None


def _change_of(record: PolicyProfileRecord) -> ProfileRow:
    return ProfileRow.of(record.policy_id, record.revision, record.is_open, record.profile)


def search(ctx: SearchContext, params: Mapping[str, Any]) -> dict:
    return ctx.backend.search(parse_search_params(params)).to_dict()


# --- consultation content -------------------------------------------------------------------------------------------


def index_policy(ctx: SearchContext, payload: Mapping[str, Any]) -> list[dict]:
    """policy_published / policy_updated: (re)index the policy and its clauses, refresh its interest profile and
    suggest links to coverage that already exists."""
    documents = indexing.policy_documents(payload)
    with ctx.unit_of_work() as uow:
        record = uow.session.get(PolicyProfileRecord, payload["policy_id"])
        previous_version = indexing.event_version(record.profile["payload"]) if record and record.profile else -1
        if previous_version > indexing.event_version(payload):
            return []  # an older event arriving late must not roll the profile back
        stale = indexing.stale_clause_ids(payload, [c["number"] for c in (record.clauses if record else [])])
        if payload["state"] in indexing.UNPUBLISHED_STATES:
            stale += [document.doc_id for document in documents]  # withdrawn: gone from public search
        else:
            ctx.backend.upsert(documents)
        if stale:
            ctx.backend.delete(stale)
        record = _store_profile(ctx, uow, payload, record)
        suggestions = []
        if record.is_open:
            suggestions = _existing_coverage(ctx, InterestProfile.from_dict(record.profile["interest"]))
            _emit_links(uow, suggestions, payload["policy_id"])
        change = _commit_profile(uow, record)
    ctx.profiles.apply(change)
    return suggestions


def update_window_state(ctx: SearchContext, payload: Mapping[str, Any]) -> None:
    """consultation_opened / consultation_closed: the state shown and filtered on, and whether linking continues."""
    with ctx.unit_of_work() as uow:
        record = uow.session.get(PolicyProfileRecord, payload["policy_id"])
        if record is None or not record.profile:
            return  # the policy event has not arrived yet; it carries the state itself
        last = dict(record.profile["payload"])
        if indexing.event_version(last) >= indexing.event_version(payload):
            # Already stored; a redelivery after a matcher failure must still reach the matcher.
            change = _change_of(record)
        else:
            last.update(state=payload["state"], occurred_at=payload["occurred_at"])
            ctx.backend.upsert(indexing.policy_documents(last))
            change = _commit_profile(uow, _store_profile(ctx, uow, last, record))
    ctx.profiles.apply(change)


def index_comment(ctx: SearchContext, payload: Mapping[str, Any]) -> None:
    """comment_moderated: approved comments (and their replies) are public; anything else leaves the index."""
    reply_ids = [f"reply:{reply['reply_id']}" for reply in payload.get("replies") or ()]
    if payload["status"] != "approved":
        ctx.backend.delete([f"comment:{payload['comment_id']}", *reply_ids])
        return
    documents = [indexing.comment_document(payload)]
    for reply in payload.get("replies") or ():
        documents.append(indexing.reply_document({
            **reply, "comment_id": payload["comment_id"], "policy_id": payload["policy_id"],
            "clause_number": payload.get("clause_number"), "language": payload.get("language"),
            "url_path": payload["url_path"], "occurred_at": payload["occurred_at"],
        }))
    ctx.backend.upsert(documents)


def index_reply(ctx: SearchContext, payload: Mapping[str, Any]) -> None:
    if payload["comment_public"]:
        ctx.backend.upsert([indexing.reply_document(payload)])


def index_explanation(ctx: SearchContext, payload: Mapping[str, Any]) -> None:
    ctx.backend.upsert([indexing.explanation_document(payload)])


# --- news coverage ---------------------------------------------------------------------------------------------------


def index_article(ctx: SearchContext, payload: Mapping[str, Any]) -> list[dict]:
    """article_ingested / article_updated: index it and match it against every open policy's profile at once."""
    ctx.backend.upsert([indexing.article_document(payload)])
    ctx.profiles.sync(ctx.unit_of_work)
    analysed = analyse_article(
        payload["title"], payload.get("text") or payload.get("summary") or "", article_id=str(payload["id"]),
        published=payload.get("published_at"),
    )
    matches = ctx.profiles.match(analysed, top_k=ARTICLE_LINKS)
    if not matches:
        return []
    article = {
        "article_id": payload["id"], "article_title": payload["title"], "article_url": payload.get("url") or "",
        "article_outlet": payload.get("outlet"), "article_published_at": _optional_time(payload.get("published_at")),
    }
    suggestions = [_with_article(match, article) for match in matches]
    with ctx.unit_of_work() as uow:
        uow.emit(LINKS_SUGGESTED, {"links": suggestions})
        uow.commit()
    return suggestions


# --- interest profiles ----------------------------------------------------------------------------------------------


def load_open_profiles(ctx: SearchContext) -> int:
    """Rebuild the matcher from the database's open profiles; returns how many there are."""
    return ctx.profiles.reload(ctx.unit_of_work)


def get_profile(ctx: SearchContext, policy_id: int) -> dict | None:
    with ctx.unit_of_work() as uow:
        record = uow.session.get(PolicyProfileRecord, policy_id)
        return _profile_view(record) if record else None


def set_profile_terms(ctx: SearchContext, policy_id: int, keywords: Iterable[str], synonyms: Mapping) -> dict | None:
    """An editor's keywords and synonyms (医保 ≈ 医疗保障) for one policy; the profile is rebuilt at once."""
    with ctx.unit_of_work() as uow:
        record = uow.session.get(PolicyProfileRecord, policy_id)
        if record is None:
            return None
        record.keywords = sorted({k.strip() for k in keywords if k and k.strip()})
        record.synonyms = {str(k).strip(): sorted({v.strip() for v in vs if v.strip()}) for k, vs in synonyms.items()}
        change = _commit_profile(uow, _store_profile(ctx, uow, record.profile["payload"], record))
        view = _profile_view(record)
    ctx.profiles.apply(change)
    return view


def _store_profile(ctx, uow, payload, record):
    if record is None:
        record = PolicyProfileRecord(policy_id=payload["policy_id"], keywords=[], synonyms={})
        uow.session.add(record)
    clauses = payload.get("clauses") or []
    kwargs = {"threshold": ctx.link_threshold} if ctx.link_threshold is not None else {}
    profile = build_profile(
        str(payload["policy_id"]), int(payload["version"]), payload["title"],
        [(c["number"], c["text"]) for c in clauses] or [(0, payload.get("summary") or payload["title"])],
        keywords=record.keywords or (), synonyms=record.synonyms or {},
        dates=[payload.get(name) for name in ("published_at", "open_at", "close_at")], **kwargs,
    )
    record.version = int(payload["version"])
    record.title = payload["title"][:500]
    record.clauses = [{"number": c["number"], "label": c["label"]} for c in clauses]
    record.is_open = payload["state"] in indexing.PROFILE_STATES
    record.profile = {"payload": _jsonable(payload), "interest": profile.to_dict()}
    return record


def _commit_profile(uow, record: PolicyProfileRecord) -> ProfileRow:
    """Commit a profile change under the next profile revision, which tells every process it happened. Taken last:
    on PostgreSQL the revision row stays locked until the commit, which orders profile changes. The caller applies
    the returned change to its own matcher after the commit: a failure there fails the event, which is redelivered
    and applies it again."""
    record.revision = next_profile_revision(uow.session)
    uow.commit()
    return _change_of(record)


def _profile_view(record: PolicyProfileRecord) -> dict:
    interest = (record.profile or {}).get("interest", {})
    top = sorted(interest.get("terms", {}).items(), key=lambda item: -item[1])[:30]
    return {
        "policy_id": record.policy_id, "version": record.version, "title": record.title, "open": record.is_open,
        "keywords": list(record.keywords or ()), "synonyms": dict(record.synonyms or {}),
        "terms": [{"term": term, "weight": round(weight, 4)} for term, weight in top],
        "threshold": interest.get("threshold"),
    }


def _existing_coverage(ctx: SearchContext, profile: InterestProfile) -> list[dict]:
    """Coverage indexed before the policy was published (more-like-this style), as link suggestions."""
    return [
        _with_article(match.suggestion, {
            "article_id": match.suggestion.article_id, "article_title": match.title, "article_url": match.url,
            "article_outlet": match.outlet, "article_published_at": _optional_time(match.published_at),
        })
        for match in ctx.profiles.existing_coverage(profile, top_k=COVERAGE_LINKS)
    ]


def _with_article(match: LinkSuggestion, article: Mapping[str, Any]) -> dict:
    clause = match.clause_number
    return {
        **article,
        "policy_id": int(match.policy_id),
        "score": round(float(match.score), 4),
        "clause_number": int(clause) if clause not in (None, "") and str(clause).isdigit() else None,
        "matched_terms": [term for term, _ in sorted(match.matched_terms.items(), key=lambda item: -item[1])],
    }


def _optional_time(value):
    return indexing.parse_time(value) if value else None


def _emit_links(uow, suggestions, policy_id):
    if suggestions:
        uow.emit(LINKS_SUGGESTED, {"links": suggestions})


def _jsonable(payload: Mapping[str, Any]) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in payload.items()}
