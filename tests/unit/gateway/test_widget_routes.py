"""The widget's routes without a broker: the consultation service is replaced by an in-memory fake (it lives in
another process; the e2e browser tests use the real one). Rendering, escaping, caching, CSP, CSRF and form posts."""
import datetime as dt
import json
import re
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from consultation.exceptions import NotFound, RateLimited, ValidationFailed, WindowClosed
from services.gateway import routes_widget
from services.gateway.routes_widget import (
    ARTICLE_CACHE,
    PAGE_CACHE,
    SITE_KEY_CACHE,
    WidgetRoutes,
    csp_header,
    form_token_ok,
    issue_form_token,
    safe_theme,
)

SECRET = "unit-test-secret"
ORIGIN = "https://news.example.com"
XSS = '<script>window.__xss=1</script><img src=x onerror="alert(1)">'


def make_policy(**overrides):
    close_at = dt.datetime.now(dt.UTC) + dt.timedelta(days=3, hours=2)
    policy = {
        "policy_id": 7, "title": "门诊报销办法（征求意见稿）", "summary": "提高报销比例。", "department": "市医疗保障局",
        "state": "open", "time_zone": "Asia/Shanghai", "close_at": close_at.isoformat(),
        "close_at_local": close_at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(), "open_at": None,
        "open_at_local": None, "accepting_comments": True, "comment_count": 1,
        "votes": {"support": 3, "oppose": 1, "neutral": 0, "total": 4},
        "clauses": [
            {"number": 1, "label": "第一条", "chapter": None, "text": "为提高保障水平，制定本办法。", "comment_count": 1,
             "votes": {"support": 2, "oppose": 0, "neutral": 0, "total": 2}},
            {"number": 2, "label": "第二条", "chapter": None, "text": "起付标准为800元。", "comment_count": 0,
             "votes": {"support": 0, "oppose": 1, "neutral": 0, "total": 1}},
        ],
    }
    policy.update(overrides)
    return policy


class FakeConsultation:
    def __init__(self, policy=None, comments=None):
        self.policy = policy or make_policy()
        self.comments = comments if comments is not None else [{
            "comment_id": 11, "reference": "C1", "clause_number": 1, "stance": "support", "text": XSS,
            "display_name": XSS, "created_at": "2026-11-20T02:00:00+00:00", "support_count": 2,
            "replies": [{"reply_id": 1, "text": "感谢您的意见。", "author_name": "市医疗保障局",
                         "created_at": "2026-11-21T02:00:00+00:00"}]}]
        self.calls = []
        self.raise_on_submit = None
        self.site_keys = {"site-abcd": {"key": "site-abcd", "allowed_origins": [ORIGIN], "enabled": True,
                                        "theme": {"--tb-accent": "#123456", "--tb-bad": "red;}</style><script>"}}}

    def _record(self, name, payload):
        self.calls.append((name, payload))

    def get_site_key(self, key):
        self._record("get_site_key", key)
        if key not in self.site_keys:
            raise NotFound("no such key")
        return self.site_keys[key]

    def get_policy(self, payload, actor):
        self._record("get_policy", payload)
        if payload["policy_id"] != self.policy["policy_id"]:
            raise NotFound("no policy")
        return self.policy

    def list_public_comments(self, payload, actor):
        self._record("list_public_comments", payload)
        return {"items": self.comments, "page": payload["page"], "page_size": payload["page_size"],
                "total": len(self.comments)}

    def list_explanations(self, payload, actor):
        return [{"explanation_id": 1, "title": "解读", "body_html": "<p>正文</p><script>bad()</script>",
                 "url": "javascript:alert(1)", "outlet": "市医保局"}]

    def list_policy_links(self, payload, actor):
        return [{"article_title": "江城日报报道", "article_url": "https://news.example.com/a", "article_outlet": "江城日报",
                 "article_published_at": "2026-11-20T02:00:00+00:00"}]

    def get_report(self, payload, actor):
        raise NotFound("no report")

    def list_links_for_article(self, payload, actor):
        self._record("list_links_for_article", payload)
        return [{**self.policy, "link_id": 1, "clause_number": None}] if "linked" in payload["article_url"] else []

    def submit_comment(self, payload, actor):
        self._record("submit_comment", payload)
        if self.raise_on_submit:
            raise self.raise_on_submit
        return {"comment_id": 99, "reference": "C261126-ABCD1234", "clause_number": payload.get("clause_number"),
                "state": "pending"}

    def cast_vote(self, payload, actor):
        self._record("cast_vote", payload)
        tally = {"support": 4, "oppose": 1, "neutral": 0, "total": 5}
        return {"policy_id": 7, "stance": payload["stance"], "results": {"policy": tally, "clauses": []}}

    def endorse_comment(self, payload, actor):
        self._record("endorse_comment", payload)
        return {"comment_id": payload["comment_id"], "support_count": 3, "endorsed": True}


@pytest.fixture(autouse=True)
def empty_caches():
    for cache in (PAGE_CACHE, SITE_KEY_CACHE, ARTICLE_CACHE):
        cache.clear()
    yield


def make_routes(fake=None):
    routes = WidgetRoutes.__new__(WidgetRoutes)
    routes.consultation = fake or FakeConsultation()
    routes.settings = SimpleNamespace(settings={"secret_key": SECRET, "public_base_url": "http://gw.test"})
    return routes


def get(routes, path="/widget/frame", **query):
    environ = EnvironBuilder(path=path, query_string=urlencode(query), base_url="http://gw.test").get_environ()
    request = Request(environ)
    return routes.widget_page(request) if path == "/widget/page" else routes.widget_frame(request)


def post(routes, kind, form, query=None, headers=None, policy_id=7):
    builder = EnvironBuilder(path=f"/widget/policies/{policy_id}/{kind}", method="POST",
                             query_string=urlencode(query or {"site": "site-abcd", "lang": "en"}), data=form,
                             base_url="http://gw.test", headers=headers or {})
    request = Request(builder.get_environ())
    handler = {"comments": routes.widget_comment, "votes": routes.widget_vote, "endorsements": routes.widget_endorse}
    return handler[kind](request, policy_id)


def frame(routes, lang="zh-CN", **extra):
    return get(routes, site="site-abcd", policy=7, lang=lang, **extra)


def test_frame_shows_policy_clauses_and_comments_with_reader_text_escaped():
    response = frame(make_routes())
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "门诊报销办法（征求意见稿）" in html and "第二条" in html and "市医疗保障局" in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "<script>window.__xss" not in html and 'onerror="alert' not in html
    assert "<script>bad()" not in html  # explanation HTML is sanitised again on the way out
    assert "javascript:alert" not in html
    assert "感谢您的意见。" in html and "还剩 3 天" in html


def test_second_view_makes_no_rpc_and_each_reader_gets_fresh_tokens():
    fake = FakeConsultation()
    routes = make_routes(fake)
    first = frame(routes).get_data(as_text=True)
    calls = len(fake.calls)
    second = frame(routes).get_data(as_text=True)
    assert len(fake.calls) == calls
    token = re.compile(r'name="csrf" value="([^"]+)"')
    assert token.search(first).group(1) != token.search(second).group(1)
    assert form_token_ok(SECRET, token.search(second).group(1), "site-abcd", 7)


def test_moderation_event_drops_the_cached_page():
    fake = FakeConsultation()
    routes = make_routes(fake)
    frame(routes)
    fake.comments[0]["text"] = "new approved comment"
    routes.widget_on_comment_moderated({"policy_id": 7, "comment_id": 11})
    assert "new approved comment" in frame(routes).get_data(as_text=True)


def test_frame_ancestors_is_exactly_the_site_keys_origins_and_the_theme_is_filtered():
    response = frame(make_routes())
    policy = response.headers["Content-Security-Policy"]
    assert f"frame-ancestors {ORIGIN}" in policy and "frame-ancestors *" not in policy
    html = response.get_data(as_text=True)
    assert "--tb-accent:#123456" in html and "--tb-bad" not in html
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy


@pytest.mark.parametrize("query", [
    {"site": "no-such-key", "policy": 7}, {"site": "site-abcd", "policy": 999}, {"site": "bad key!", "policy": 7},
    {"site": "site-abcd", "policy": "x"}, {"policy": 7},
])
def test_unknown_keys_and_policies_get_a_neutral_page(query):
    response = get(make_routes(), lang="en", **query)
    assert response.status_code == 404
    assert "not available" in response.get_data(as_text=True)


def test_disabled_site_key_is_unavailable():
    fake = FakeConsultation()
    fake.site_keys["site-abcd"]["enabled"] = False
    assert frame(make_routes(fake)).status_code == 404


def test_english_reader_sees_english_labels():
    html = frame(make_routes(), lang="en").get_data(as_text=True)
    assert "Send comment" in html and "提交意见" not in html and '<html lang="en">' in html


def test_article_url_mode_shows_the_linked_consultation_or_says_there_is_none():
    routes = make_routes()
    linked = get(routes, site="site-abcd", article_url="https://news.example.com/linked", lang="en")
    assert "门诊报销办法" in linked.get_data(as_text=True)
    assert re.search(r'name="csrf" value="[^"]+"', linked.get_data(as_text=True))
    none = get(routes, site="site-abcd", article_url="https://news.example.com/other", lang="en")
    assert "No public consultation is linked" in none.get_data(as_text=True)


def test_standalone_page_cannot_be_framed():
    response = get(make_routes(), path="/widget/page", site="site-abcd", policy=7)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def valid_form(**overrides):
    form = {"csrf": issue_form_token(SECRET, "site-abcd", 7), "voter_token": "v" * 24, "text": "起付标准应降低。",
            "stance": "oppose", "clause_number": "2", "display_name": "", "contact": "", "website": "",
            "submission_id": "s" * 16}
    form.update(overrides)
    return form


JSON_CLIENT = {"X-Requested-With": "tb-widget", "Origin": "http://gw.test"}


def test_comment_post_passes_provenance_and_returns_the_reference():
    fake = FakeConsultation()
    response = post(make_routes(fake), "comments", valid_form(), headers=JSON_CLIENT)
    body = json.loads(response.get_data())
    assert response.status_code == 200 and body["reference"] == "C261126-ABCD1234"
    payload = next(p for name, p in fake.calls if name == "submit_comment")
    assert payload["channel"] == "widget" and payload["clause_number"] == 2 and payload["site_key"] == "site-abcd"
    assert payload["voter_token"] == "v" * 24 and payload["client_ip"] and payload["idempotency_key"]


def test_comment_post_without_a_valid_form_token_is_refused():
    fake = FakeConsultation()
    for token in ("", "forged", issue_form_token(SECRET, "site-abcd", 8), issue_form_token("other", "site-abcd", 7)):
        response = post(make_routes(fake), "comments", valid_form(csrf=token), headers=JSON_CLIENT)
        assert response.status_code == 403
    assert not [c for c in fake.calls if c[0] == "submit_comment"]


def test_comment_post_from_another_origin_is_refused():
    response = post(make_routes(), "comments", valid_form(),
                    headers={"X-Requested-With": "tb-widget", "Origin": "https://evil.example"})
    assert response.status_code == 403


def test_honeypot_submission_is_answered_but_never_stored():
    fake = FakeConsultation()
    response = post(make_routes(fake), "comments", valid_form(website="http://spam.example"), headers=JSON_CLIENT)
    assert response.status_code == 200 and not [c for c in fake.calls if c[0] == "submit_comment"]


def test_rate_limit_becomes_a_friendly_message_with_retry_after():
    fake = FakeConsultation()
    fake.raise_on_submit = RateLimited(3)
    response = post(make_routes(fake), "comments", valid_form(), headers=JSON_CLIENT)
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    assert "try again in 3 seconds" in json.loads(response.get_data())["message"]


def test_domain_validation_errors_come_back_per_field_in_the_readers_language():
    fake = FakeConsultation()
    fake.raise_on_submit = ValidationFailed({"contact": "comment.contact_invalid"})
    body = json.loads(post(make_routes(fake), "comments", valid_form(contact="nope"), headers=JSON_CLIENT).get_data())
    assert body["fields"]["contact"] == "Enter a valid phone number or e-mail address."


def test_closed_window_is_explained():
    fake = FakeConsultation()
    fake.raise_on_submit = WindowClosed("closed", None, "2026-11-01T18:00:00+08:00", "Asia/Shanghai", "closed")
    response = post(make_routes(fake), "comments", valid_form(), headers=JSON_CLIENT)
    assert response.status_code == 409 and "2026-11-01 18:00" in json.loads(response.get_data())["message"]


def test_oversized_post_is_refused_before_parsing():
    response = post(make_routes(), "comments", valid_form(text="字" * 30000), headers=JSON_CLIENT)
    assert response.status_code == 413


def test_form_post_without_javascript_re_renders_the_widget_with_errors_and_escaped_input():
    response = post(make_routes(), "comments", valid_form(text="", display_name=XSS),
                    headers={"Origin": "http://gw.test"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "Write your comment first." in html
    assert "&lt;script&gt;window.__xss=1" in html and "<script>window.__xss" not in html


def test_vote_without_javascript_shows_results_from_the_rpc_reply():
    fake = FakeConsultation()
    response = post(make_routes(fake), "votes", {"csrf": issue_form_token(SECRET, "site-abcd", 7),
                                                  "voter_token": "v" * 24, "stance": "support"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "5 votes so far" in html and 'data-count-of="support">4<' in html
    assert "<div class=\"tb-results\" data-results>" in html  # not hidden after voting


def test_endorsement_returns_the_new_count():
    body = json.loads(post(make_routes(), "endorsements", {"csrf": issue_form_token(SECRET, "site-abcd", 7),
                                                           "voter_token": "v" * 24, "comment_id": "11"},
                           headers=JSON_CLIENT).get_data())
    assert body["support_count"] == 3


def test_form_tokens_expire():
    token = issue_form_token(SECRET, "site-abcd", 7)
    assert form_token_ok(SECRET, token, "site-abcd", 7)
    assert not form_token_ok(SECRET, token, "site-abcd", 7, max_age=-1)
    assert not form_token_ok(SECRET, token, "other-site", 7)


def test_theme_keeps_only_inert_css_variables():
    theme = {"--tb-accent": "#0b57a4", "--tb-font": "Georgia, serif", "color": "red", "--x": "red}body{x:1",
             "--y": "url(http://x)", "--z": "</style>"}
    assert safe_theme(theme) == {"--tb-accent": "#0b57a4", "--tb-font": "Georgia, serif"}


def test_unavailable_page_may_be_framed_anywhere_but_real_pages_only_by_their_origins():
    assert "frame-ancestors *" in csp_header(None, None)
    assert "frame-ancestors 'none'" in csp_header([], None)
    assert "frame-ancestors https://a.example https://b.example" in csp_header(
        ["https://a.example", "https://b.example"], None)


def test_static_assets_are_served_with_caching_headers():
    routes = make_routes()
    request = Request(EnvironBuilder(path="/widget.js", headers={"Accept-Encoding": "gzip"}).get_environ())
    response = routes.widget_js(request)
    assert response.headers["Content-Encoding"] == "gzip" and "max-age" in response.headers["Cache-Control"]
    assert routes_widget.static_file("nope.txt") is None


class ReportingConsultation(FakeConsultation):
    def get_report(self, payload, actor):
        return {"policy_id": 7, "title": self.policy["title"], "department": "市医疗保障局", "state": "published",
                "summary": "采纳了降低起付线的建议。", "comment_count": 12, "published_at": "2026-12-30T02:00:00+00:00",
                "entries": [{"clause_number": 2, "clause_label": "第二条", "summary": "起付线偏高",
                             "decision": "adopted", "reason": "降至600元", "comment_count": 5}]}


def test_closed_consultation_shows_the_result_and_the_published_feedback_report():
    fake = ReportingConsultation(make_policy(state="report_published", accepting_comments=False))
    html = frame(make_routes(fake)).get_data(as_text=True)
    assert "意见采纳情况" in html and "降至600元" in html and "采纳" in html
    assert "最终投票结果" in html and 'id="tb-comment-form"' not in html and 'class="tb-vote-form"' not in html
    assert "<div class=\"tb-results\" data-results>" in html  # results are shown, not hidden behind a vote


def test_every_visible_control_has_a_label():
    from html.parser import HTMLParser

    class Controls(HTMLParser):
        def __init__(self):
            super().__init__()
            self.labelled, self.controls, self.inside_label = set(), [], 0

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "label":
                self.inside_label += 1
                if attrs.get("for"):
                    self.labelled.add(attrs["for"])
            elif tag in ("input", "select", "textarea") and attrs.get("type") != "hidden":
                self.controls.append((attrs.get("id"), self.inside_label > 0, attrs.get("name")))

        def handle_endtag(self, tag):
            if tag == "label":
                self.inside_label -= 1

    for language in ("zh-CN", "en"):
        parser = Controls()
        parser.feed(frame(make_routes(), lang=language).get_data(as_text=True))
        assert parser.controls
        unlabelled = [name for control_id, wrapped, name in parser.controls
                      if not wrapped and control_id not in parser.labelled]
        assert unlabelled == []


def test_form_post_from_the_standalone_page_answers_with_the_standalone_page():
    html_page = get(make_routes(), path="/widget/page", site="site-abcd", policy=7, lang="en").get_data(as_text=True)
    assert "view=page" in html_page
    response = post(make_routes(), "votes", {"csrf": issue_form_token(SECRET, "site-abcd", 7), "voter_token": "v" * 24,
                                             "stance": "oppose"}, query={"site": "site-abcd", "lang": "en",
                                                                          "view": "page"})
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "tb-standalone" in response.get_data(as_text=True)


def test_every_event_that_changes_what_the_widget_shows_reaches_every_gateway_process():
    from nameko.events import BROADCAST

    from consultation import events

    heard = {}
    for name in dir(WidgetRoutes):
        for entrypoint in getattr(getattr(WidgetRoutes, name), "nameko_entrypoints", ()):
            if hasattr(entrypoint, "event_type"):
                heard[entrypoint.event_type] = (entrypoint.source_service, entrypoint.handler_type,
                                                entrypoint.reliable_delivery)
    expected = {events.COMMENT_MODERATED, events.REPLY_POSTED, events.POLICY_UPDATED, events.CONSULTATION_OPENED,
                events.CONSULTATION_CLOSED, events.EXPLANATION_PUBLISHED, events.LINK_CONFIRMED,
                events.REPORT_PUBLISHED}
    assert set(heard) == expected
    assert set(heard.values()) == {("consultation", BROADCAST, False)}


def test_confirmed_link_refreshes_the_article_lookup():
    fake = FakeConsultation()
    routes = make_routes(fake)
    url = "https://news.example.com/story"
    assert "No public consultation" in get(routes, site="site-abcd", article_url=url, lang="en").get_data(as_text=True)
    fake.list_links_for_article = lambda payload, actor: [{**fake.policy, "link_id": 1, "clause_number": None}]
    routes.widget_on_link_confirmed({"policy_id": 7, "article_url": url})
    assert "门诊报销办法" in get(routes, site="site-abcd", article_url=url, lang="en").get_data(as_text=True)


def test_demo_site_lists_its_articles_and_embeds_the_widget_from_the_loopback_twin():
    routes = make_routes()
    routes.consultation.list_policies = lambda payload, actor: {"items": [
        {"policy_id": 41, "title": "Protected Cycling Lanes Policy (consultation draft)"}]}
    request = Request(EnvironBuilder(path="/demo/", base_url="http://localhost:8123").get_environ())
    index = routes.demo_index(request).get_data(as_text=True)
    assert index.count('href="/demo/articles/') == 3 and "http://127.0.0.1:8123/widget.js" in index
    request = Request(EnvironBuilder(path="/demo/articles/cycling-lanes", base_url="http://localhost:8123").get_environ())
    article = routes.demo_article(request, "cycling-lanes").get_data(as_text=True)
    assert '<script src="http://127.0.0.1:8123/widget.js" data-site="demo-news-site" data-policy="41"' in article
    assert "<noscript>" in article and 'rel="canonical"' in article
