"""Console views without a broker: the RPC proxies are recorders answering with data shaped like the services'
(the broker is the one thing not run here), and each request goes through the same route table and dispatch as in
the gateway."""
import datetime as dt
import functools
import io
import re

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from consultation.exceptions import InvalidTransition, NotFound, Unauthenticated, ValidationFailed
from services.gateway.auth import SESSION_COOKIE, Signer
from services.gateway.routes_console import (
    CONSOLE_ROUTES,
    LOGIN_CSRF_COOKIE,
    ConsoleRoutes,
    allowed,
    local_input_to_iso,
    local_time,
    parse_synonyms,
    parse_theme,
    safe_next,
    snippet,
    split_lines,
)

# --- fakes: stand-ins for the RPC proxies (what nameko's worker_factory would inject) -------------------------

NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
SECRET = "unit-test-secret"


def make_policy(**overrides) -> dict:
    policy = {
        "policy_id": 7, "title": "门诊医保报销办法（征求意见稿）", "summary": "提高报销比例", "department": "市医疗保障局",
        "topics": ["医保"], "document_number": None, "language": "zh", "time_zone": "Asia/Shanghai", "state": "open",
        "version": 2, "current_version": 2, "open_at": NOW, "close_at": NOW + dt.timedelta(days=30),
        "open_at_local": None, "close_at_local": None, "published_at": NOW, "updated_at": NOW,
        "url_path": "/policies/7", "comment_count": 3, "accepting_comments": True, "preamble": "为规范报销，制定本办法。",
        "chapters": [], "parse_warnings": [{"code": "numbering_gap", "message": "第三条 is missing"}],
        "versions": [{"number": 1, "created_at": NOW, "change_note": ""},
                     {"number": 2, "created_at": NOW, "change_note": "提高比例"}],
        "clauses": [
            {"number": 1, "label": "第一条", "chapter": "第一章 总则", "text": "为提高门诊保障水平，制定本办法。", "comment_count": 2,
             "votes": {"support": 3, "oppose": 1, "neutral": 0, "total": 4}},
            {"number": 2, "label": "第二条", "chapter": "第一章 总则", "text": "起付标准为800元。", "comment_count": 1,
             "votes": {"support": 0, "oppose": 2, "neutral": 1, "total": 3}},
        ],
        "votes": {"support": 5, "oppose": 2, "neutral": 1, "total": 8},
    }
    policy.update(overrides)
    return policy


def make_staff_comment(**overrides) -> dict:
    comment = {
        "comment_id": 11, "reference": "C-0011", "policy_id": 7, "version": 2, "clause_number": 2, "stance": "oppose",
        "state": "pending", "created_at": NOW, "text": "起付线太高，请联系[已隐去]", "display_name": "王先生", "language": "zh",
        "reason_code": None, "flags": ["personal_data"], "channel": "widget", "site_key": "demo-site",
        "source_url": "https://news.example.com/a", "has_contact": True, "moderated_at": None, "support_count": 0,
    }
    comment.update(overrides)
    return comment


def make_public_comment(**overrides) -> dict:
    comment = {
        "comment_id": 12, "reference": "C-0012", "policy_id": 7, "version": 2, "clause_number": 1, "stance": "support",
        "text": "赞成<script>alert(1)</script>", "display_name": None, "language": "zh", "created_at": NOW,
        "support_count": 4,
        "replies": [{"reply_id": 1, "text": "感谢您的意见", "author_name": "市医疗保障局", "created_at": NOW}],
    }
    comment.update(overrides)
    return comment


def make_link(**overrides) -> dict:
    link = {
        "link_id": 5, "policy_id": 7, "clause_number": None, "article_id": "abc", "article_title": "医保门诊报销新政解读",
        "article_url": "https://news.example.com/a", "article_outlet": "示例日报", "article_published_at": NOW,
        "state": "suggested", "origin": "suggested", "score": 0.82, "matched_terms": ["医保", "门诊"],
        "decided_by": None, "decided_at": None, "created_at": NOW, "updated_at": NOW,
    }
    link.update(overrides)
    return link


def make_explanation(**overrides) -> dict:
    explanation = {
        "explanation_id": 3, "policy_id": 7, "kind": "article", "title": "政策解读", "body_html": "<p>解读<b>要点</b></p>",
        "url": None, "outlet": None, "clause_numbers": [1], "language": "zh", "state": "draft", "created_at": NOW,
        "updated_at": NOW, "published_at": None,
    }
    explanation.update(overrides)
    return explanation


def make_report(**overrides) -> dict:
    report = {
        "policy_id": 7, "title": "门诊医保报销办法", "department": "市医疗保障局", "version": 2, "state": "draft",
        "summary": "共收到意见3条", "comment_count": 3, "stance_counts": {"support": 2, "oppose": 1},
        "decision_counts": {"adopted": 1}, "updated_at": NOW, "published_at": None,
        "entries": [{"clause_number": 2, "clause_label": "第二条", "summary": "起付线偏高", "decision": "adopted",
                     "reason": "已下调", "comment_count": 1}],
    }
    report.update(overrides)
    return report


def make_feed(**overrides) -> dict:
    feed = {
        "id": 4, "url": "https://news.example.com/rss.xml", "site_url": None, "title": "示例日报", "outlet": "示例日报",
        "language": "zh", "time_zone": "Asia/Shanghai", "poll_interval_s": 900, "category": None, "paused": False,
        "created_at": NOW, "updated_at": NOW, "articles_seen": 12,
        "health": {"status": "failing", "last_polled_at": NOW, "last_success_at": NOW, "last_error_at": NOW,
                   "last_error": "HTTP 503", "consecutive_failures": 2, "next_poll_at": NOW},
    }
    feed.update(overrides)
    return feed


class Recorder:
    """Any RPC name is callable; answers come from `answers` (a value or a function of the arguments)."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args):
            self.calls.append((name, args))
            answer = self.answers.get(name, {})
            if isinstance(answer, BaseException):
                raise answer
            return answer(*args) if callable(answer) else answer

        return call

    def called(self, name: str) -> list[tuple]:
        return [args for called_name, args in self.calls if called_name == name]


def consultation_answers() -> dict:
    policy = make_policy()
    return {
        "get_policy": policy,
        "list_policies": {"items": [policy], "page": 1, "page_size": 20, "total": 1},
        "diff_versions": {"policy_id": 7, "v_from": 1, "v_to": 2, "changes": [
            {"kind": "changed", "old_number": 2, "new_number": 2, "old_label": "第二条", "new_label": "第二条",
             "old_text": "起付标准为1000元。", "new_text": "起付标准为800元。", "similarity": 0.8,
             "text_diff": [{"op": "equal", "text": "起付标准为"}, {"op": "delete", "text": "1000"},
                           {"op": "insert", "text": "800"}, {"op": "equal", "text": "元。"}]},
            {"kind": "added", "old_number": None, "new_number": 3, "old_label": None, "new_label": "第三条",
             "old_text": None, "new_text": "本办法自公布之日起施行。", "similarity": 0.0,
             "text_diff": [{"op": "insert", "text": "本办法自公布之日起施行。"}]}]},
        "list_public_comments": {"items": [make_public_comment()], "page": 1, "page_size": 20, "total": 1},
        "get_report": make_report(),
        "list_moderation_queue": {"items": [make_staff_comment(), make_staff_comment(comment_id=13, flags=[])],
                                  "next_cursor": "abc"},
        "comment_history": {"comment": make_staff_comment(), "transitions": [
            {"at": NOW, "actor_user_id": 1, "actor_username": "mod", "from_state": "pending", "to_state": "approved",
             "reason_code": None, "note": None}]},
        "view_comment_original": {"comment_id": 11, "reference": "C-0011", "original_text": "起付线太高，请联系13800000000",
                                  "public_text": "起付线太高，请联系[已隐去]",
                                  "contact": {"kind": "phone", "value": "13800000000", "consent": True}},
        "list_explanations": [make_explanation(), make_explanation(explanation_id=4, state="published")],
        "list_policy_links": lambda payload, actor: [make_link(state=payload.get("state") or "suggested")],
        "list_users": [{"user_id": 1, "username": "admin", "display_name": "Admin", "roles": ["admin"],
                        "disabled": False, "locked_until": None, "last_login_at": NOW, "created_at": NOW},
                       {"user_id": 2, "username": "mod", "display_name": "Mod", "roles": ["moderator"],
                        "disabled": True, "locked_until": NOW, "last_login_at": None, "created_at": NOW}],
        "list_site_keys": [{"key": "demo-site", "name": "示例日报", "allowed_origins": ["https://news.example.com"],
                            "enabled": True, "theme": {"--tb-accent": "#c0392b"}, "created_at": NOW,
                            "updated_at": NOW}],
        "list_audit_log": {"items": [{"id": 9, "at": NOW, "actor_user_id": 1, "actor_username": "admin",
                                      "action": "policy.open", "object_type": "policy", "object_id": "7",
                                      "detail": {"changed": ["title"]}}], "next_before_id": 8},
        "authenticate": {"user_id": 1, "username": "admin", "roles": ["admin"]},
        "create_policy": {**policy, "policy_id": 8},
        "revise_draft": {**policy, "version": 3},
        "create_explanation": make_explanation(),
        "bulk_moderate": {"results": [], "succeeded": 0, "failed": 0},
    }


def newsfeed_answers() -> dict:
    return {"list_feeds": [make_feed(), make_feed(id=5, paused=True, health={**make_feed()["health"],
                                                                             "status": "ok", "last_error": None})]}


def search_answers() -> dict:
    return {
        "search": {"hits": [{"doc_id": "article:abc", "doc_type": "article", "title": "医保新政", "url": "https://x.test/a",
                             "score": 3.2, "highlights": {"body": ["本市<mark>医保</mark>&lt;b&gt;<img src=x>"]},
                             "source": {"outlet": "示例日报", "published_at": "2026-11-02T00:00:00+00:00"}}],
                   "total": 1, "facets": {}, "page": 1, "per_page": 10, "pages": 1},
        "get_profile": {"policy_id": 7, "version": 2, "title": "门诊医保", "open": True, "keywords": ["门诊"],
                        "synonyms": {"医保": ["医疗保障"]}, "terms": [{"term": "医保", "weight": 0.9}], "threshold": 0.35},
        "set_profile_terms": {"policy_id": 7},
    }


class FakeSettings:
    def __init__(self, secure: bool = False):
        self.settings = {"secure_cookies": "true" if secure else "false"}
        self.signer = Signer(SECRET)
        self.amqp_uri = "memory://"


def make_console(secure: bool = False):
    """A ConsoleRoutes instance whose RPC proxies are Recorders (what nameko's worker_factory would inject)."""
    from services.gateway.routes_console import ConsoleRoutes

    console = ConsoleRoutes()
    console.settings = FakeSettings(secure)
    console.consultation = Recorder(consultation_answers())
    console.newsfeed = Recorder(newsfeed_answers())
    console.search_service = Recorder(search_answers())
    return console


def session_cookie(roles, user_id: int = 1, username: str = "staff") -> tuple[str, str]:
    """(cookie value, csrf token) for a signed console session."""
    signer = Signer(SECRET)
    cookie = signer.issue_session({"user_id": user_id, "username": username, "roles": list(roles)})
    return cookie, signer.read_session(cookie)["csrf"]


def make_request(method: str, path: str, *, form: dict | None = None, cookies: dict | None = None,
                 query: dict | None = None, language: str = "zh-CN") -> Request:
    builder = EnvironBuilder(method=method, path=path, data=form, query_string=query,
                             headers={"Accept-Language": language})
    environ = builder.get_environ()
    if cookies:
        environ["HTTP_COOKIE"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    environ.setdefault("wsgi.input", io.BytesIO())
    return Request(environ)


@functools.cache
def _route_map():
    from werkzeug.routing import Map, Rule

    from services.gateway.routes_console import CONSOLE_ROUTES

    return Map([Rule(spec.path, methods=[spec.method], endpoint=index) for index, spec in enumerate(CONSOLE_ROUTES)])


def call(console, method: str, path: str, *, roles=None, form: dict | None = None, csrf: str | bool = True,
         query: dict | None = None, language: str = "zh-CN", cookies: dict | None = None):
    """Route `method path` through the console's table and dispatch, as the gateway would; returns the Response."""
    from services.gateway.routes_console import CONSOLE_ROUTES

    index, url_args = _route_map().bind("localhost").match(path, method=method)
    jar = dict(cookies or {})
    form = dict(form or {})
    if roles is not None:
        cookie, token = session_cookie(roles)
        jar[SESSION_COOKIE] = cookie
        if method == "POST" and csrf is True:
            form.setdefault("csrf_token", token)
    if isinstance(csrf, str):
        form["csrf_token"] = csrf
    request = make_request(method, path, form=form if method == "POST" else None, cookies=jar, query=query,
                           language=language)
    return console._console_dispatch(CONSOLE_ROUTES[index], request, url_args)


ROLES = ("policy_officer", "editor", "moderator", "admin")
SAMPLE_ARGS = {"policy_id": "7", "comment_id": "11", "explanation_id": "3", "link_id": "5", "feed_id": "4",
               "user_id": "2", "key": "demo-site", "name": "console.css"}
MUTATING_RPCS = {
    "create_policy", "update_policy_details", "revise_draft", "schedule_policy", "open_consultation",
    "close_consultation", "withdraw_policy", "post_reply", "save_report", "publish_report", "moderate_comment",
    "bulk_moderate", "view_comment_original", "create_explanation", "update_explanation", "publish_explanation",
    "create_link", "decide_link", "create_user", "set_user_roles", "set_user_disabled", "reset_password",
    "create_site_key", "update_site_key", "add_feed", "pause_feed", "resume_feed", "poll_now", "set_profile_terms",
}


def concrete(path: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda match: SAMPLE_ARGS[match.group(1)], path)


def rpc_names(console) -> set[str]:
    return {name for recorder in (console.consultation, console.newsfeed, console.search_service)
            for name, _args in recorder.calls}


# --- the table ----------------------------------------------------------------------------------------------------


def test_every_route_in_the_table_has_its_view_and_no_other_gateway_mixin_shadows_it():
    from services.gateway.service import GatewayService

    for spec in CONSOLE_ROUTES:
        name = f"console_{spec.view}"
        assert callable(getattr(ConsoleRoutes, name, None)), name
        assert getattr(GatewayService, name) is getattr(ConsoleRoutes, name), f"{name} is shadowed"


def test_routes_are_unique_and_every_post_is_an_action_under_the_console():
    keys = [(spec.method, spec.path) for spec in CONSOLE_ROUTES]
    assert len(keys) == len(set(keys))
    assert all(spec.path.startswith("/console") and spec.method in ("GET", "POST") for spec in CONSOLE_ROUTES)
    assert all(spec.checks_csrf for spec in CONSOLE_ROUTES if spec.method == "POST")


# --- who may do what ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [s for s in CONSOLE_ROUTES if s.roles is not None],
                         ids=lambda spec: f"{spec.method} {spec.path}")
def test_without_a_session_pages_redirect_to_sign_in_and_actions_are_refused(spec):
    console = make_console()
    response = call(console, spec.method, concrete(spec.path))
    if spec.method == "GET":
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/console/login?next=")
    else:
        assert response.status_code == 401
    assert not rpc_names(console)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_through_exactly_where_the_table_allows(role):
    for spec in CONSOLE_ROUTES:
        if spec.roles is None:
            continue
        console = make_console()
        response = call(console, spec.method, concrete(spec.path), roles=[role])
        if allowed(spec, {"roles": [role]}):
            assert response.status_code not in (401, 403, 500), (spec, response.get_data(as_text=True)[-400:])
        else:
            assert response.status_code == 403, spec
            assert not rpc_names(console), spec  # refused before any service is asked


@pytest.mark.parametrize("spec", [s for s in CONSOLE_ROUTES if s.method == "POST" and s.roles is not None],
                         ids=lambda spec: spec.path)
@pytest.mark.parametrize("token", [None, "forged-token"])
def test_a_post_without_the_sessions_csrf_token_is_refused_before_anything_happens(spec, token):
    console = make_console()
    response = call(console, "POST", concrete(spec.path), roles=["admin"], csrf=token or False)
    assert response.status_code == 403
    assert not rpc_names(console) & MUTATING_RPCS


def test_a_session_signed_with_another_key_counts_as_signed_out():
    from services.gateway.auth import Signer

    forged = Signer("not-the-gateway-secret").issue_session({"user_id": 1, "username": "x", "roles": ["admin"]})
    response = call(make_console(), "GET", "/console/users", cookies={SESSION_COOKIE: forged})
    assert response.status_code == 303 and response.headers["Location"].startswith("/console/login")


# --- sign-in --------------------------------------------------------------------------------------------------------


def sign_in(console, password="correct-password", **kwargs):
    return call(console, "POST", "/console/login", cookies={LOGIN_CSRF_COOKIE: "login-token"},
                form={"username": "officer", "password": password, "csrf_token": "login-token",
                      "next": "/console/moderation"}, **kwargs)


def test_signing_in_sets_an_http_only_same_site_session_cookie_for_the_console_only():
    console = make_console()
    response = sign_in(console)
    assert response.status_code == 303 and response.headers["Location"] == "/console/moderation"
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie
    assert console.consultation.called("authenticate") == [({"username": "officer", "password": "correct-password"},)]


def test_the_session_cookie_is_secure_when_the_gateway_is_behind_tls():
    response = sign_in(make_console(secure=True))
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE))
    assert "Secure" in cookie


def test_a_wrong_password_keeps_the_username_and_says_so_without_a_session():
    console = make_console()
    console.consultation.answers["authenticate"] = Unauthenticated("invalid username or password", "None")
    response = sign_in(console, password="wrong", language="en")
    body = response.get_data(as_text=True)
    assert response.status_code == 401
    assert "The username or password is not right." in body and 'value="officer"' in body
    assert not any(h.startswith(SESSION_COOKIE) for h in response.headers.getlist("Set-Cookie"))


def test_a_locked_account_is_told_how_long_to_wait():
    console = make_console()
    console.consultation.answers["authenticate"] = Unauthenticated("account temporarily locked", "840")
    response = sign_in(console, language="en")
    assert response.status_code == 429
    assert "Try again in 14 minutes." in response.get_data(as_text=True)


def test_sign_in_refuses_a_form_that_did_not_come_from_the_sign_in_page():
    console = make_console()
    response = call(console, "POST", "/console/login", cookies={LOGIN_CSRF_COOKIE: "login-token"},
                    form={"username": "officer", "password": "x", "csrf_token": "other"})
    assert response.status_code == 403 and not console.consultation.calls


@pytest.mark.parametrize("target, expected", [
    ("/console/moderation?queue=all", "/console/moderation?queue=all"),
    ("https://evil.example/console", "/console"),
    ("//evil.example/console", "/console"),
    ("/api/v1/staff/users", "/console"),
    ("/console\\@evil", "/console"),
    (None, "/console"),
])
def test_after_sign_in_only_console_paths_are_followed(target, expected):
    assert safe_next(target) == expected


def test_signing_out_expires_the_session_cookie():
    response = call(make_console(), "POST", "/console/logout", roles=["editor"])
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE))
    assert "Expires=Thu, 01 Jan 1970" in cookie and "Path=/console" in cookie


# --- pages ----------------------------------------------------------------------------------------------------------


def test_pages_are_not_framed_cached_or_allowed_inline_scripts():
    response = call(make_console(), "GET", "/console/policies", roles=["editor"])
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"


def test_english_on_request_is_remembered_in_a_cookie():
    response = call(make_console(), "GET", "/console/policies", roles=["editor"], query={"lang": "en"})
    body = response.get_data(as_text=True)
    assert '<html lang="en">' in body and "Published comments" in body
    assert any(h.startswith("tb_lang=en") for h in response.headers.getlist("Set-Cookie"))
    remembered = call(make_console(), "GET", "/console/policies", roles=["editor"], cookies={"tb_lang": "en"})
    assert "Published comments" in remembered.get_data(as_text=True)


def test_chinese_is_the_default_and_follows_the_browser():
    body = call(make_console(), "GET", "/console/policies", roles=["editor"]).get_data(as_text=True)
    assert '<html lang="zh-CN">' in body and "已公开意见" in body
    english = call(make_console(), "GET", "/console/policies", roles=["editor"], language="en-GB,en;q=0.8")
    assert "Published comments" in english.get_data(as_text=True)


def test_comment_text_is_escaped_never_run():
    body = call(make_console(), "GET", "/console/policies/7/comments", roles=["policy_officer"]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_search_snippets_keep_only_their_highlight_marks():
    assert snippet("本市<mark>医保</mark>&lt;b&gt;<img src=x>") == "本市<mark>医保</mark>&lt;b&gt;&lt;img src=x>"


def test_the_policy_list_asks_one_page_with_live_counts_and_offers_paging():
    console = make_console()
    console.consultation.answers["list_policies"] = {"items": [make_policy()], "page": 2, "page_size": 20,
                                                    "total": 45}
    response = call(console, "GET", "/console/policies", roles=["editor"], query={"page": "2", "state": "open"})
    body = response.get_data(as_text=True)
    assert console.consultation.called("list_policies")[0][0] == {"page": 2, "page_size": 20, "state": "open"}
    assert "第 2 / 3 页" in body and "page=3" in body and "page=1" in body


def test_a_domain_refusal_becomes_a_page_in_the_readers_language():
    console = make_console()
    console.consultation.answers["close_consultation"] = InvalidTransition("cannot close", "draft", "close")
    response = call(console, "POST", "/console/policies/7/close", roles=["policy_officer"])
    body = response.get_data(as_text=True)
    assert response.status_code == 409 and "当前无法执行" in body and "当前状态为“草稿”，无法执行此操作。" in body


def test_a_comment_that_cannot_take_an_action_says_why_in_the_readers_language():
    console = make_console()
    console.consultation.answers["moderate_comment"] = InvalidTransition("cannot approve", "rejected", "approve")
    response = call(console, "POST", "/console/comments/11/moderate", roles=["moderator"], form={"action": "approve"},
                    language="en")
    assert response.status_code == 409
    assert "The comment is “Rejected” and cannot take this action." in response.get_data(as_text=True)


def test_a_missing_policy_is_a_404_page():
    console = make_console()
    console.consultation.answers["get_policy"] = NotFound("policy 9 not found")
    assert call(console, "GET", "/console/policies/9", roles=["editor"]).status_code == 404


# --- the policy office ----------------------------------------------------------------------------------------------


DRAFT = "为规范报销，现征求意见。\n第一条　为提高保障水平，制定本办法。\n第二条　起付标准为800元。\n"


def test_preview_shows_the_parsed_clauses_and_saves_nothing():
    console = make_console()
    response = call(console, "POST", "/console/policies/new", roles=["policy_officer"],
                    form={"title": "办法", "department": "医保局", "text": DRAFT, "intent": "preview"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-clause-number="1"' in body and 'data-clause-number="2"' in body and "识别出 2 条" in body
    assert "起付标准为800元。" in body and not console.consultation.called("create_policy")


def test_saving_a_draft_sends_the_pasted_text_and_shows_the_new_policy():
    console = make_console()
    response = call(console, "POST", "/console/policies/new", roles=["policy_officer"], form={
        "title": " 办法 ", "department": "医保局", "text": DRAFT, "topics": "医保，门诊\n医疗", "intent": "save",
        "time_zone": "Asia/Shanghai"})
    assert response.status_code == 303 and response.headers["Location"] == "/console/policies/8?done=created"
    payload, actor = console.consultation.called("create_policy")[0]
    assert payload["title"] == "办法" and payload["text"] == DRAFT and payload["topics"] == ["医保", "门诊", "医疗"]
    assert actor["roles"] == ["policy_officer"]


def test_field_errors_are_listed_linked_and_marked_on_their_fields():
    console = make_console()
    console.consultation.answers["create_policy"] = ValidationFailed({"title": "title.length"})
    response = call(console, "POST", "/console/policies/new", roles=["policy_officer"],
                    form={"department": "医保局", "text": DRAFT, "intent": "save"})
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert '<a href="#f-title">标题须为 1 至 300 字。</a>' in body
    assert re.search(r'id="f-title"[^>]*aria-describedby="f-title-error"[^>]*aria-invalid="true"', body)
    assert DRAFT.splitlines()[1] in body  # the pasted text is kept


def test_scheduling_reads_the_times_in_the_consultations_time_zone():
    console = make_console()
    call(console, "POST", "/console/policies/7/schedule", roles=["policy_officer"], form={
        "open_at": "2026-12-01T09:00", "close_at": "2026-12-31T18:00", "time_zone": "Asia/Shanghai"})
    payload, _actor = console.consultation.called("schedule_policy")[0]
    assert payload == {"policy_id": 7, "open_at": "2026-12-01T09:00:00+08:00", "close_at": "2026-12-31T18:00:00+08:00"}


def test_a_bad_schedule_is_shown_on_the_policy_page_with_the_fields_marked():
    console = make_console()
    console.consultation.answers["schedule_policy"] = ValidationFailed({"close_at": "window.close_before_open"})
    response = call(console, "POST", "/console/policies/7/schedule", roles=["policy_officer"],
                    form={"open_at": "2026-12-01T09:00", "close_at": "2026-11-01T09:00"})
    assert response.status_code == 400 and "截止时间必须晚于开始时间。" in response.get_data(as_text=True)


def test_a_revision_shows_its_diff_next():
    console = make_console()
    response = call(console, "POST", "/console/policies/7/revise", roles=["policy_officer"],
                    form={"text": DRAFT, "change_note": "调整", "intent": "save"})
    assert response.headers["Location"] == "/console/policies/7/diff?v_from=2&v_to=3&done=revised"


def test_the_diff_page_marks_insertions_and_deletions():
    body = call(make_console(), "GET", "/console/policies/7/diff", roles=["editor"]).get_data(as_text=True)
    assert "<del>1000</del>" in body and "<ins>800</ins>" in body and "新增" in body


def test_the_report_sends_only_filled_rows_and_marks_errors_on_the_row_they_came_from():
    console = make_console()
    console.consultation.answers["get_policy"] = make_policy(state="closed")
    console.consultation.answers["save_report"] = ValidationFailed({"entries": {"0": {"decision": "field.choice"}}})
    response = call(console, "POST", "/console/policies/7/report", roles=["policy_officer"], form={
        "summary": "总体", "entries-2-summary": "偏高", "entries-2-decision": "bogus", "entries-2-reason": "下调"})
    payload, _actor = console.consultation.called("save_report")[0]
    assert payload["entries"] == [{"clause_number": 2, "summary": "偏高", "decision": "bogus", "reason": "下调"}]
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and 'href="#f-entries-2-decision"' in body


def test_publishing_the_report_from_the_form_saves_then_publishes():
    console = make_console()
    response = call(console, "POST", "/console/policies/7/report", roles=["policy_officer"], form={
        "entries-0-summary": "整体赞成", "entries-0-decision": "noted", "intent": "publish"})
    assert [name for name, _ in console.consultation.calls if name in ("save_report", "publish_report")] == [
        "save_report", "publish_report"]
    assert console.consultation.called("save_report")[0][0]["entries"][0]["clause_number"] is None
    assert response.headers["Location"].endswith("done=report_published")


def test_a_reply_returns_to_the_comment_it_answers():
    console = make_console()
    response = call(console, "POST", "/console/comments/12/reply", roles=["policy_officer"],
                    form={"text": "感谢", "back": "/console/policies/7/comments?clause=1#comment-12"})
    assert response.headers["Location"] == "/console/policies/7/comments?clause=1&done=replied#comment-12"
    assert console.consultation.called("post_reply")[0][0] == {"comment_id": 12, "text": "感谢"}


# --- moderators -----------------------------------------------------------------------------------------------------


def test_the_queue_passes_its_filters_and_cursor_to_the_service_and_shows_redacted_text():
    console = make_console()
    response = call(console, "GET", "/console/moderation", roles=["moderator"], query={
        "queue": "flagged", "policy_id": "7", "clause_number": "2", "stance": "oppose", "channel": "widget",
        "cursor": "abc", "state": "approved"})
    payload, _actor = console.consultation.called("list_moderation_queue")[0]
    assert payload == {"queue": "flagged", "policy_id": 7, "clause_number": 2, "stance": "oppose",
                       "channel": "widget", "limit": 50, "cursor": "abc"}
    body = response.get_data(as_text=True)
    assert "请联系[已隐去]" in body and "13800000000" not in body and "发现个人信息" in body
    assert 'id="next-page"' in body and 'class="approve-form"' in body


def test_rejecting_sends_the_reason_and_returns_to_the_same_queue():
    console = make_console()
    response = call(console, "POST", "/console/comments/11/moderate", roles=["moderator"], form={
        "action": "reject", "reason_code": "spam", "note": " 广告 ", "back": "/console/moderation?policy_id=7"})
    assert console.consultation.called("moderate_comment")[0][0] == {
        "comment_id": 11, "action": "reject", "reason_code": "spam", "note": "广告"}
    assert response.headers["Location"] == "/console/moderation?policy_id=7&done=moderated"


def test_bulk_moderation_reports_the_comments_it_could_not_change():
    console = make_console()
    console.consultation.answers["bulk_moderate"] = {"succeeded": 1, "failed": 1, "results": [
        {"comment_id": 11, "ok": True, "error": None, "state": "approved"},
        {"comment_id": 13, "ok": False, "error": "invalid_transition", "state": "rejected"}]}
    response = call(console, "POST", "/console/moderation/bulk", roles=["moderator"],
                    form={"comment_ids": ["11", "13", "x"], "action": "approve"})
    assert console.consultation.called("bulk_moderate")[0][0] == {"comment_ids": [11, 13], "action": "approve"}
    assert response.status_code == 200 and "意见 13" in response.get_data(as_text=True)


def test_the_original_text_is_fetched_only_on_an_explicit_post():
    console = make_console()
    page = call(console, "GET", "/console/comments/11", roles=["moderator"]).get_data(as_text=True)
    assert "13800000000" not in page and not console.consultation.called("view_comment_original")
    shown = call(console, "POST", "/console/comments/11/original", roles=["moderator"]).get_data(as_text=True)
    assert "13800000000" in shown and console.consultation.called("view_comment_original")


def test_officers_see_a_comments_history_but_not_the_button_for_its_original():
    body = call(make_console(), "GET", "/console/comments/11", roles=["policy_officer"]).get_data(as_text=True)
    assert 'id="history"' in body and 'id="show-original"' not in body


# --- editors --------------------------------------------------------------------------------------------------------


def test_publishing_a_new_explanation_creates_then_publishes_it():
    console = make_console()
    call(console, "POST", "/console/policies/7/explanations", roles=["editor"], form={
        "kind": "article", "language": "zh", "title": "解读", "body_html": "<p>要点</p>", "clause_numbers": ["1", "2"],
        "intent": "publish"})
    payload, _actor = console.consultation.called("create_explanation")[0]
    assert payload == {"policy_id": 7, "title": "解读", "clause_numbers": [1, 2], "kind": "article", "language": "zh",
                       "body_html": "<p>要点</p>"}
    assert console.consultation.called("publish_explanation")[0][0] == {"explanation_id": 3}


def test_the_suggestion_queue_shows_score_and_matched_terms():
    body = call(make_console(), "GET", "/console/policies/7/links", roles=["editor"]).get_data(as_text=True)
    assert "0.82" in body and '<span class="term">医保</span>' in body and 'class="primary confirm-link"' in body


def test_an_article_found_by_search_is_linked_with_its_id_and_chosen_clause():
    console = make_console()
    console.consultation.answers["list_policy_links"] = []
    body = call(console, "GET", "/console/policies/7/links", roles=["editor"], query={"q": "医保"}).get_data(
        as_text=True)
    assert console.search_service.called("search")[0][0] == {"q": "医保", "doc_type": "article", "per_page": "10",
                                                              "page": "1"}
    assert 'name="article_id" value="abc"' in body
    call(console, "POST", "/console/policies/7/links", roles=["editor"], form={
        "article_id": "abc", "article_title": "医保新政", "article_url": "https://x.test/a", "clause_number": "2",
        "article_published_at": "2026-11-02T00:00:00+00:00", "article_outlet": ""})
    assert console.consultation.called("create_link")[0][0] == {
        "policy_id": 7, "article_title": "医保新政", "article_url": "https://x.test/a", "article_id": "abc",
        "article_published_at": "2026-11-02T00:00:00+00:00", "clause_number": 2}


def test_keywords_and_synonyms_are_read_from_lines():
    console = make_console()
    response = call(console, "POST", "/console/policies/7/profile", roles=["editor"], form={
        "keywords": "门诊，起付线\n报销", "synonyms": "医保 = 医疗保障, 医疗保险\n门诊＝门急诊"})
    assert response.status_code == 303
    assert console.search_service.called("set_profile_terms")[0] == (
        7, ["门诊", "起付线", "报销"], {"医保": ["医疗保障", "医疗保险"], "门诊": ["门急诊"]})


def test_a_synonym_line_without_an_equals_sign_is_a_field_error():
    console = make_console()
    response = call(console, "POST", "/console/policies/7/profile", roles=["editor"],
                    form={"keywords": "", "synonyms": "医保 医疗保障"})
    assert response.status_code == 400 and "医保 医疗保障" in response.get_data(as_text=True)
    assert not console.search_service.called("set_profile_terms")


def test_feeds_show_health_and_last_error():
    body = call(make_console(), "GET", "/console/feeds", roles=["editor"]).get_data(as_text=True)
    assert "HTTP 503" in body and "连续失败 2 次" in body and "立即抓取" in body and "恢复" in body


# --- admins ---------------------------------------------------------------------------------------------------------


def test_a_new_account_gets_only_known_roles():
    console = make_console()
    call(console, "POST", "/console/users", roles=["admin"], form={
        "username": "li", "password": "long-enough-pw", "roles": ["editor", "superuser"], "display_name": "Li"})
    assert console.consultation.called("create_user")[0][0] == {
        "username": "li", "display_name": "Li", "roles": ["editor"], "password": "long-enough-pw"}


def test_site_key_origins_and_theme_are_read_from_lines():
    console = make_console()
    call(console, "POST", "/console/site-keys/demo-site", roles=["admin"], form={
        "name": "示例日报", "allowed_origins": "https://a.example\nhttps://b.example", "theme": "--tb-accent: #c00;",
        "enabled": "true"})
    assert console.consultation.called("update_site_key")[0][0] == {
        "key": "demo-site", "name": "示例日报", "allowed_origins": ["https://a.example", "https://b.example"],
        "theme": {"--tb-accent": "#c00"}, "enabled": True}


def test_the_audit_log_pages_by_id():
    console = make_console()
    body = call(console, "GET", "/console/audit", roles=["admin"], query={"before_id": "20"}).get_data(as_text=True)
    assert console.consultation.called("list_audit_log")[0][0] == {"limit": 50, "before_id": 20}
    assert "before_id=8" in body and "policy.open" in body


# --- helpers --------------------------------------------------------------------------------------------------------


def test_lines_and_commas_split_into_unique_items():
    assert split_lines("医保，门诊、报销\n医保, \n\n") == ["医保", "门诊", "报销"]


def test_theme_and_synonym_lines_report_what_they_cannot_read():
    assert parse_theme("--a: 1\nnonsense") == ({"--a": "1"}, ["nonsense"])
    assert parse_synonyms("a = b\n= c") == ({"a": ["b"]}, ["= c"])


def test_times_are_shown_and_read_in_the_consultations_zone():
    assert local_time(NOW, "Asia/Shanghai") == "2026-11-20 10:00"
    assert local_input_to_iso("2026-11-20T10:00", "Europe/London") == "2026-11-20T10:00:00+00:00"
    assert local_input_to_iso("", "Asia/Shanghai") is None


def test_the_start_page_tells_a_moderator_how_many_comments_wait_without_counting_them_all():
    console = make_console()
    body = call(console, "GET", "/console", roles=["moderator"]).get_data(as_text=True)
    assert console.consultation.called("list_moderation_queue")[0][0] == {"queue": "pending", "limit": 100}
    assert "2+ 条待审核" in body
    editor = make_console()
    call(editor, "GET", "/console", roles=["editor"])
    assert not editor.consultation.called("list_moderation_queue")


def test_comments_by_stance_come_from_the_staff_comment_query_with_replies_possible():
    console = make_console()
    body = call(console, "GET", "/console/policies/7/comments", roles=["policy_officer"],
                query={"stance": "oppose", "clause": "2"}).get_data(as_text=True)
    assert console.consultation.called("list_moderation_queue")[0][0] == {
        "queue": "all", "state": "approved", "policy_id": 7, "stance": "oppose", "limit": 20, "clause_number": 2}
    assert not console.consultation.called("list_public_comments")
    assert 'action="/console/comments/11/reply"' in body and "cursor=abc" in body


def test_when_the_service_refuses_the_stance_filter_the_page_says_so_and_shows_all_comments():
    from consultation.exceptions import Forbidden

    console = make_console()
    console.consultation.answers["list_moderation_queue"] = Forbidden("needs moderator")
    response = call(console, "GET", "/console/policies/7/comments", roles=["policy_officer"],
                    query={"stance": "oppose"}, language="en")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="stance-refused"' in body
    assert console.consultation.called("list_public_comments")
