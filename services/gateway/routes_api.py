"""The JSON API under /api/v1: one table of routes, each a thin call to the owning service.

Payloads are the JSON body (or the query string for GET) merged with the URL's ids; the owning service validates
them with its marshmallow schemas. Staff routes name the roles allowed (admin always is) and pass the actor on, so
the service checks again. The tables are also what the OpenAPI document and the authorisation tests walk.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Response

from consultation.report import report_document
from services.gateway.auth import require_roles
from services.gateway.base import GatewayBase
from services.gateway.errors import ApiError, describe
from services.gateway.http import json_response, query_params, read_json, request_language, route
from services.gateway.templating import render

OFFICER, EDITOR, MODERATOR, ADMIN = "policy_officer", "editor", "moderator", "admin"
ANY_STAFF = (OFFICER, EDITOR, MODERATOR)


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    service: str  # "consultation" | "newsfeed" | "search"
    rpc: str
    roles: tuple[str, ...] | None = None  # None: public
    status: int = 200
    summary: str = ""
    schema: str | None = None  # name of the input schema in the owning package (for the OpenAPI document)
    url_args: dict = field(default_factory=dict)  # URL variable → payload key when they differ


def staff(method, path, service, rpc, roles, **kw):
    return ApiRoute(method, path, service, rpc, roles=tuple(roles), **kw)


def public(method, path, service, rpc, **kw):
    return ApiRoute(method, path, service, rpc, **kw)


P = "/api/v1"
S = "/api/v1/staff"

PUBLIC_ROUTES = [
    public("GET", f"{P}/policies", "consultation", "list_policies", schema="ListPoliciesSchema",
           summary="Published policies (filters: state, department, topic)"),
    public("GET", f"{P}/policies/<int:policy_id>", "consultation", "get_policy", schema="GetPolicySchema",
           summary="A policy's current (or ?version=) text with clauses, counts and tallies"),
    public("GET", f"{P}/policies/<int:policy_id>/diff", "consultation", "diff_versions", schema="DiffVersionsSchema",
           summary="Clause-level diff between two versions (?v_from=&v_to=)"),
    public("GET", f"{P}/policies/<int:policy_id>/comments", "consultation", "list_public_comments",
           schema="ListPublicCommentsSchema", summary="Approved comments with official replies"),
    public("GET", f"{P}/policies/<int:policy_id>/poll", "consultation", "poll_results",
           summary="Support / oppose / neutral counts per policy and clause"),
    public("GET", f"{P}/policies/<int:policy_id>/explanations", "consultation", "list_explanations",
           schema="ListExplanationsSchema", summary="Published official explanations (政策解读)"),
    public("GET", f"{P}/policies/<int:policy_id>/links", "consultation", "list_policy_links",
           schema="ListPolicyLinksSchema", summary="Confirmed news coverage of the policy"),
    public("GET", f"{P}/policies/<int:policy_id>/report", "consultation", "get_report",
           summary="The published feedback report (意见采纳情况)"),
    public("GET", f"{P}/articles/consultations", "consultation", "list_links_for_article",
           schema="ListLinksForArticleSchema", summary="Consultations confirmed as linked to a news article (?url=)"),
]

STAFF_ROUTES = [
    # policies and the consultation window
    staff("GET", f"{S}/policies", "consultation", "list_policies", ANY_STAFF, schema="ListPoliciesSchema"),
    staff("POST", f"{S}/policies", "consultation", "create_policy", (OFFICER,), status=201,
          schema="CreatePolicySchema", summary="Create a draft from pasted text or a clause list"),
    staff("GET", f"{S}/policies/<int:policy_id>", "consultation", "get_policy", ANY_STAFF, schema="GetPolicySchema"),
    staff("PATCH", f"{S}/policies/<int:policy_id>", "consultation", "update_policy_details", (OFFICER,),
          schema="UpdatePolicyDetailsSchema"),
    staff("POST", f"{S}/policies/<int:policy_id>/versions", "consultation", "revise_draft", (OFFICER,), status=201,
          schema="ReviseDraftSchema"),
    staff("POST", f"{S}/policies/<int:policy_id>/schedule", "consultation", "schedule_policy", (OFFICER,),
          schema="SchedulePolicySchema"),
    staff("POST", f"{S}/policies/<int:policy_id>/open", "consultation", "open_consultation", (OFFICER,),
          schema="OpenConsultationSchema"),
    staff("POST", f"{S}/policies/<int:policy_id>/close", "consultation", "close_consultation", (OFFICER,)),
    staff("POST", f"{S}/policies/<int:policy_id>/withdraw", "consultation", "withdraw_policy", (OFFICER,),
          schema="WithdrawPolicySchema"),
    # comments: moderation and replies
    staff("GET", f"{S}/comments", "consultation", "list_moderation_queue", (MODERATOR, OFFICER),
          schema="ListModerationQueueSchema"),
    staff("POST", f"{S}/comments/<int:comment_id>/moderation", "consultation", "moderate_comment", (MODERATOR,),
          schema="ModerateCommentSchema"),
    staff("POST", f"{S}/comments/bulk-moderation", "consultation", "bulk_moderate", (MODERATOR,),
          schema="BulkModerateSchema"),
    staff("GET", f"{S}/comments/<int:comment_id>/history", "consultation", "comment_history", (MODERATOR, OFFICER)),
    staff("GET", f"{S}/comments/<int:comment_id>/original", "consultation", "view_comment_original", (MODERATOR,)),
    staff("POST", f"{S}/comments/<int:comment_id>/replies", "consultation", "post_reply", (OFFICER,), status=201,
          schema="PostReplySchema"),
    # explanations, coverage links, interest profiles
    staff("GET", f"{S}/policies/<int:policy_id>/explanations", "consultation", "list_explanations", ANY_STAFF,
          schema="ListExplanationsSchema"),
    staff("POST", f"{S}/policies/<int:policy_id>/explanations", "consultation", "create_explanation", (EDITOR, OFFICER),
          status=201, schema="CreateExplanationSchema"),
    staff("PATCH", f"{S}/explanations/<int:explanation_id>", "consultation", "update_explanation", (EDITOR, OFFICER),
          schema="UpdateExplanationSchema"),
    staff("POST", f"{S}/explanations/<int:explanation_id>/publish", "consultation", "publish_explanation", (EDITOR, OFFICER),
          schema="PublishExplanationSchema"),
    staff("GET", f"{S}/policies/<int:policy_id>/links", "consultation", "list_policy_links", (EDITOR, OFFICER),
          schema="ListPolicyLinksSchema"),
    staff("POST", f"{S}/policies/<int:policy_id>/links", "consultation", "create_link", (EDITOR,), status=201,
          schema="CreateLinkSchema"),
    staff("POST", f"{S}/links/<int:link_id>/decision", "consultation", "decide_link", (EDITOR,),
          schema="DecideLinkSchema"),
    staff("GET", f"{S}/policies/<int:policy_id>/profile", "search", "get_profile", (EDITOR, OFFICER)),
    staff("PUT", f"{S}/policies/<int:policy_id>/profile", "search", "set_profile_terms", (EDITOR,)),
    # feedback report
    staff("GET", f"{S}/policies/<int:policy_id>/report", "consultation", "get_report", (OFFICER,)),
    staff("PUT", f"{S}/policies/<int:policy_id>/report", "consultation", "save_report", (OFFICER,),
          schema="SaveReportSchema"),
    staff("POST", f"{S}/policies/<int:policy_id>/report/publish", "consultation", "publish_report", (OFFICER,)),
    # feeds
    staff("GET", f"{S}/feeds", "newsfeed", "list_feeds", (EDITOR,)),
    staff("POST", f"{S}/feeds", "newsfeed", "add_feed", (EDITOR,), status=201, schema="AddFeedSchema"),
    staff("GET", f"{S}/feeds/<int:feed_id>", "newsfeed", "get_feed", (EDITOR,)),
    staff("PATCH", f"{S}/feeds/<int:feed_id>", "newsfeed", "update_feed", (EDITOR,), schema="UpdateFeedSchema"),
    staff("DELETE", f"{S}/feeds/<int:feed_id>", "newsfeed", "remove_feed", (EDITOR,)),
    staff("POST", f"{S}/feeds/<int:feed_id>/pause", "newsfeed", "pause_feed", (EDITOR,)),
    staff("POST", f"{S}/feeds/<int:feed_id>/resume", "newsfeed", "resume_feed", (EDITOR,)),
    staff("POST", f"{S}/feeds/<int:feed_id>/poll", "newsfeed", "poll_now", (EDITOR,)),
    staff("GET", f"{S}/articles", "newsfeed", "list_articles", (EDITOR,), schema="ListArticlesSchema"),
    # administration
    staff("GET", f"{S}/users", "consultation", "list_users", (ADMIN,)),
    staff("POST", f"{S}/users", "consultation", "create_user", (ADMIN,), status=201, schema="CreateUserSchema"),
    staff("POST", f"{S}/users/<int:user_id>/disabled", "consultation", "set_user_disabled", (ADMIN,),
          schema="SetUserDisabledSchema"),
    staff("POST", f"{S}/users/<int:user_id>/password", "consultation", "reset_password", (ADMIN,),
          schema="ResetPasswordSchema"),
    staff("POST", f"{S}/users/<int:user_id>/roles", "consultation", "set_user_roles", (ADMIN,),
          schema="SetUserRolesSchema"),
    staff("GET", f"{S}/site-keys", "consultation", "list_site_keys", (ADMIN,)),
    staff("POST", f"{S}/site-keys", "consultation", "create_site_key", (ADMIN,), status=201,
          schema="CreateSiteKeySchema"),
    staff("PATCH", f"{S}/site-keys/<key>", "consultation", "update_site_key", (ADMIN,), schema="UpdateSiteKeySchema"),
    staff("GET", f"{S}/audit-log", "consultation", "list_audit_log", (ADMIN,), schema="ListAuditLogSchema"),
]


def _payload(request, url_args) -> dict:
    data = query_params(request) if request.method in ("GET", "DELETE") else read_json(request)
    data.pop("lang", None)
    return {**data, **url_args}


def _call(self, api: ApiRoute, request, url_args, actor):
    """Dispatch to the owning service; newsfeed and search RPCs take their arguments positionally."""
    payload = _payload(request, url_args)
    if api.service == "consultation":
        return self.consultation_call(api.rpc, payload, actor)
    proxy = self.newsfeed if api.service == "newsfeed" else self.search_service
    method = getattr(proxy, api.rpc)
    ids = [url_args[key] for key in ("feed_id", "policy_id") if key in url_args]
    body = {k: v for k, v in payload.items() if k not in url_args}
    if api.rpc in ("add_feed", "list_articles"):
        return method(body)
    if api.rpc == "update_feed":
        return method(ids[0], body)
    if api.rpc == "set_profile_terms":
        return method(ids[0], body.get("keywords") or [], body.get("synonyms") or {})
    result = method(*ids)
    if result is None:
        raise ApiError(404, "not_found", "Not found.")
    return result


def submission(request, ids: dict, channel: str) -> dict:
    """A comment submission as the consultation service expects it, with provenance set by the gateway."""
    body = read_json(request)
    for untrusted in ("channel", "client_ip"):
        body.pop(untrusted, None)
    payload = {**body, **ids, "channel": channel, "client_ip": request.remote_addr or "unknown"}
    key = request.headers.get("Idempotency-Key")
    if key:
        payload["idempotency_key"] = key[:100]
    return payload


def _make_view(api: ApiRoute):
    def view(self, request, **url_args):
        actor = require_roles(request, self.settings.signer, *api.roles) if api.roles is not None else None
        return json_response(_call(self, api, request, url_args, actor), status=api.status)

    view.__name__ = f"api_{api.method.lower()}_{api.rpc}_{abs(hash(api.path)) % 10**6}"
    return route(api.method, api.path)(view)


class ApiRoutes(GatewayBase):
    def consultation_call(self, rpc_name: str, payload: dict, actor):
        return getattr(self.consultation, rpc_name)(payload, actor)

    @route("POST", f"{P}/auth/token")
    def issue_token(self, request):
        """Exchange a staff username and password for a bearer token (12 hours)."""
        actor = self.consultation.authenticate(read_json(request))
        return json_response({"token": self.settings.signer.issue_token(actor), "token_type": "Bearer",
                              "expires_in": 12 * 3600, "user": actor})

    @route("POST", f"{P}/policies/<int:policy_id>/comments")
    def submit_comment(self, request, policy_id):
        """A citizen's comment (pending until moderated). Channel, address and key come from the request, not the
        body; a repeated Idempotency-Key returns the first receipt."""
        payload = submission(request, {"policy_id": policy_id}, channel="api")
        return json_response(self.consultation.submit_comment(payload, None), status=201)

    @route("POST", f"{P}/policies/<int:policy_id>/votes")
    def cast_vote(self, request, policy_id):
        payload = {**read_json(request), "policy_id": policy_id}
        return json_response(self.consultation.cast_vote(payload, None))

    @route("POST", f"{P}/comments/<int:comment_id>/endorsements")
    def endorse_comment(self, request, comment_id):
        payload = {**read_json(request), "comment_id": comment_id}
        return json_response(self.consultation.endorse_comment(payload, None))

    @route("GET", f"{P}/policies/<int:policy_id>/report/comments.csv")
    def report_comments_csv(self, request, policy_id):
        """All approved comments as CSV, streamed slice by slice (constant memory at any size)."""
        self.consultation.get_report({"policy_id": policy_id}, None)  # 404 / not yet published → error here

        def lines():
            offset = 0
            while offset is not None:
                page = self.consultation.approved_comments_csv(policy_id, offset)
                yield from (line.encode("utf-8") for line in page["lines"])
                offset = page["next_offset"]

        return Response(lines(), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="policy-{policy_id}-comments.csv"'})

    @route("GET", "/policies/<int:policy_id>/report")
    def report_page(self, request, policy_id):
        """The published feedback report (意见采纳情况) as an HTML page, in the reader's language."""
        language = request_language(request)
        try:
            report = self.consultation.get_report({"policy_id": policy_id}, None)
        except Exception as exc:  # noqa: BLE001 - a page, so errors are pages too (same status as the JSON API)
            status, body, headers = describe(exc, language)
            html = render("report/error.html", language, status=status, message=body["error"]["message"])
            return Response(html, status=status, mimetype="text/html", headers=headers)
        document = report_document(report, "en" if language == "en" else "zh")
        time_zone = self.consultation.get_policy({"policy_id": policy_id}, None)["time_zone"]
        html = render("report/report.html", language, document=document, policy_id=policy_id,
                      published_local=_local_minute(report.get("published_at"), time_zone),
                      json_url=f"{P}/policies/{policy_id}/report", csv_url=f"{P}/policies/{policy_id}/report/comments.csv")
        return Response(html, mimetype="text/html")


def _local_minute(moment, time_zone: str) -> str | None:
    """'2026-11-26 15:04 (Asia/Shanghai)': report dates are shown in the consultation's own time zone."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return f"{moment.astimezone(ZoneInfo(time_zone)):%Y-%m-%d %H:%M} ({time_zone})"


for _index, _api in enumerate(PUBLIC_ROUTES + STAFF_ROUTES):
    setattr(ApiRoutes, f"_api_{_index}", _make_view(_api))
