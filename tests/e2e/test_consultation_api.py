"""The consultation flows over HTTP through the gateway (/api/v1), with the whole stack running as processes:
drafts and versions, the comment window, comments and their limits, moderation, replies, votes, explanations,
coverage links, the feedback report (JSON, HTML, CSV), errors in both languages, and the OpenAPI document."""
import csv
import datetime as dt
import io
import itertools
import re
import time
import uuid

import pytest
import requests
from requests.adapters import HTTPAdapter

from services.demo import DEMO_USER
from services.gateway.openapi import SPECIAL_ROUTES, gateway_entrypoints, openapi_path
from services.gateway.routes_api import PUBLIC_ROUTES, STAFF_ROUTES

pytestmark = pytest.mark.rabbit

ZH_DRAFT = """关于规范共享单车停放的办法（征求意见稿）
为改善市容，现公开征求意见。
第一章　总则
第一条　为规范共享单车停放秩序，制定本办法。
第二条　本办法适用于本市城区。
第二章　停放
第三条　共享单车应当在划定区域停放。
"""
ZH_DRAFT_V2 = ZH_DRAFT.replace("制定本办法。", "保障行人通行，制定本办法。") + "第四条　违规停放的，由企业及时清理。\n"

PHONE, EMAIL = "13812345678", "reader.li@example.cn"
CJK = re.compile(r"[\u4e00-\u9fff]")

_addresses = itertools.count(1)


class SourceAddressAdapter(HTTPAdapter):
    """Connect from a chosen loopback address: each simulated citizen gets their own IP, as on the internet."""

    def __init__(self, address, **kwargs):
        self.address = address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Citizen:
    """A reader with their own address and voter token (rate limits count per token and per address)."""

    def __init__(self, stack):
        n = next(_addresses)
        self.address = f"127.78.{n // 250}.{n % 250 + 1}"
        self.voter_token = uuid.uuid4().hex
        self.base_url = stack.base_url
        self.http = requests.Session()
        self.http.mount("http://", SourceAddressAdapter(self.address))

    def comment(self, policy_id, headers=None, **body):
        body = {"text": "建议在地铁站口增加停放区。", "stance": "suggestion", "voter_token": self.voter_token, **body}
        return self.http.post(f"{self.base_url}/api/v1/policies/{policy_id}/comments", json=body,
                              headers=headers or {}, timeout=30)

    def vote(self, policy_id, stance, **body):
        return self.http.post(f"{self.base_url}/api/v1/policies/{policy_id}/votes",
                              json={"stance": stance, "voter_token": self.voter_token, **body}, timeout=30)

    def get(self, path, **kwargs):
        return self.http.get(f"{self.base_url}{path}", timeout=30, **kwargs)


def call(stack, session, method, path, expected=200, **kwargs):
    response = session.request(method, f"{stack.base_url}{path}", timeout=30, **kwargs)
    assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
    return response.json() if "json" in response.headers.get("Content-Type", "") else response


def new_policy(stack, staff, text=ZH_DRAFT, open_now=True) -> int:
    created = call(stack, staff, "POST", "/api/v1/staff/policies", 201, json={
        "title": "共享单车停放办法", "department": "市城市管理局", "topics": ["交通"], "text": text})
    if open_now:
        close_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=15)).isoformat()
        call(stack, staff, "POST", f"/api/v1/staff/policies/{created['policy_id']}/open", json={"close_at": close_at})
    return created["policy_id"]


def eventually(check, seconds=30.0, interval=0.3):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    return last


# --- drafts, versions, diff --------------------------------------------------------------------------------------


def test_draft_is_split_into_clauses_and_public_only_once_opened(stack, staff):
    policy_id = new_policy(stack, staff, open_now=False)
    assert requests.get(f"{stack.base_url}/api/v1/policies/{policy_id}", timeout=30).status_code == 404
    staff_view = call(stack, staff, "GET", f"/api/v1/staff/policies/{policy_id}")
    assert [c["number"] for c in staff_view["clauses"]] == [1, 2, 3] and staff_view["state"] == "draft"
    close_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=15)).isoformat()
    call(stack, staff, "POST", f"/api/v1/staff/policies/{policy_id}/open", json={"close_at": close_at})
    public = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}")
    assert public["state"] == "open" and public["accepting_comments"] is True
    assert public["clauses"][2]["chapter"].startswith("第二章") and "改善市容" in public["preamble"]
    listed = call(stack, requests, "GET", "/api/v1/policies", params={"state": "open", "page_size": 100})
    assert policy_id in [item["policy_id"] for item in listed["items"]]


def test_clause_diff_between_versions_is_served(stack, staff):
    policy_id = new_policy(stack, staff)
    call(stack, staff, "POST", f"/api/v1/staff/policies/{policy_id}/versions", 201,
         json={"text": ZH_DRAFT_V2, "change_note": "增加清理条款"})
    diff = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}/diff", params={"v_from": 1, "v_to": 2})
    kinds = {(c["new_number"] or c["old_number"]): c["kind"] for c in diff["changes"]}
    assert kinds[1] == "changed" and kinds[4] == "added"
    changed = next(c for c in diff["changes"] if c["kind"] == "changed")
    assert "保障行人通行" in "".join(s["text"] for s in changed["text_diff"] if s["op"] == "insert")
    first = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}", params={"version": 1})
    assert len(first["clauses"]) == 3
    missing = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}/diff", 404, params={"v_from": 1, "v_to": 9})
    assert missing["error"]["code"] == "not_found"


# --- comments: receipts, limits, errors --------------------------------------------------------------------------


def test_comment_gets_a_pending_receipt_and_a_retry_with_the_same_idempotency_key_returns_it(stack, staff):
    policy_id = new_policy(stack, staff)
    citizen = Citizen(stack)
    key = uuid.uuid4().hex
    first = citizen.comment(policy_id, headers={"Idempotency-Key": key}, clause_number=3, stance="oppose")
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt["state"] == "pending" and receipt["clause_number"] == 3 and receipt["reference"]
    again = citizen.comment(policy_id, headers={"Idempotency-Key": key}, clause_number=3, stance="oppose")
    assert again.status_code == 201 and again.json() == receipt  # not rate limited: no second comment was made
    queue = call(stack, staff, "GET", "/api/v1/staff/comments", params={"queue": "all", "policy_id": policy_id})
    assert [c["comment_id"] for c in queue["items"]] == [receipt["comment_id"]]
    assert queue["items"][0]["channel"] == "api"


def test_second_comment_from_one_address_within_three_seconds_gets_429_with_retry_after(stack, staff):
    policy_id = new_policy(stack, staff)
    citizen = Citizen(stack)
    assert citizen.comment(policy_id).status_code == 201
    citizen.voter_token = uuid.uuid4().hex  # a new token does not help: the address is limited too
    limited = citizen.comment(policy_id, text="换个说法再提一次。")
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["Retry-After"]) <= 3
    assert limited.json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("language, header", [("en", {"Accept-Language": "en"}), ("zh", {"Accept-Language": "zh-CN"})])
def test_invalid_comment_lists_each_bad_field_in_the_readers_language(stack, staff, language, header):
    policy_id = new_policy(stack, staff)
    response = Citizen(stack).comment(policy_id, headers=header, text="长" * 5001, stance="maybe")
    assert response.status_code == 400, response.text
    fields = response.json()["error"]["fields"]
    assert {"text", "stance"} <= set(fields)
    contact = Citizen(stack).comment(policy_id, headers=header, contact="not a contact", contact_consent=True)
    assert contact.status_code == 400, contact.text
    fields["contact"] = contact.json()["error"]["fields"]["contact"]
    for message in fields.values():
        assert bool(CJK.search(message)) == (language == "zh"), message


def test_oversize_bodies_get_413(stack, staff):
    policy_id = new_policy(stack, staff)
    for text in ("x" * 70_000, "长" * 25_000):  # over 64 KiB of JSON, in ASCII and in UTF-8 Chinese
        response = Citizen(stack).comment(policy_id, text=text)
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
    over_the_comment_limit = Citizen(stack).comment(policy_id, text="x" * 20_000)
    assert over_the_comment_limit.status_code == 400 and "text" in over_the_comment_limit.json()["error"]["fields"]


def test_unknown_ids_get_404(stack, staff):
    citizen = Citizen(stack)
    assert citizen.get("/api/v1/policies/987654").status_code == 404
    assert citizen.comment(987654).status_code == 404
    assert citizen.vote(987654, "support").status_code == 404
    moderation = staff.post(f"{stack.base_url}/api/v1/staff/comments/987654/moderation",
                            json={"action": "approve"}, timeout=30)
    assert moderation.status_code == 404 and moderation.json()["error"]["code"] == "not_found"


def test_comment_after_closing_gets_409_saying_when_it_closed(stack, staff):
    policy_id = new_policy(stack, staff)
    closed = call(stack, staff, "POST", f"/api/v1/staff/policies/{policy_id}/close", json={})
    local_close = closed["close_at_local"][:16].replace("T", " ")
    for language in ("en", "zh-CN"):
        response = Citizen(stack).comment(policy_id, headers={"Accept-Language": language})
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "window_closed" and local_close in error["message"], error
        assert bool(CJK.search(error["message"])) == (language == "zh-CN"), error["message"]
    assert Citizen(stack).vote(policy_id, "support").status_code == 409


def test_closing_a_closed_consultation_is_an_invalid_transition_409(stack, staff):
    policy_id = new_policy(stack, staff)
    call(stack, staff, "POST", f"/api/v1/staff/policies/{policy_id}/close", json={})
    again = call(stack, staff, "POST", f"/api/v1/staff/policies/{policy_id}/close", 409, json={})
    assert again["error"]["code"] == "invalid_transition"


# --- moderation, replies, votes, endorsements ---------------------------------------------------------------------


def test_moderated_comment_with_an_official_reply_is_public_and_endorsable(stack, staff):
    policy_id = new_policy(stack, staff)
    kept = Citizen(stack).comment(policy_id, stance="support").json()["comment_id"]
    spam = Citizen(stack).comment(policy_id, text="广告 http://a.cn http://b.cn http://c.cn").json()["comment_id"]
    hidden = Citizen(stack).comment(policy_id, text="暂不公开的意见。").json()["comment_id"]
    flagged = call(stack, staff, "GET", "/api/v1/staff/comments", params={"queue": "flagged", "policy_id": policy_id})
    assert [c["comment_id"] for c in flagged["items"]] == [spam]
    call(stack, staff, "POST", f"/api/v1/staff/comments/{spam}/moderation",
         json={"action": "reject", "reason_code": "spam"})
    bulk = call(stack, staff, "POST", "/api/v1/staff/comments/bulk-moderation",
                json={"comment_ids": [kept], "action": "approve"})
    assert bulk["succeeded"] == 1
    call(stack, staff, "POST", f"/api/v1/staff/comments/{hidden}/moderation", json={"action": "hide"})
    reply = call(stack, staff, "POST", f"/api/v1/staff/comments/{kept}/replies", 201,
                 json={"text": "感谢支持，我们会增设停放区。"})
    assert reply["public"] is True
    history = call(stack, staff, "GET", f"/api/v1/staff/comments/{spam}/history")
    assert history["transitions"][-1]["reason_code"] == "spam"
    assert history["transitions"][-1]["actor_username"] == DEMO_USER

    public = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}/comments")
    assert [c["comment_id"] for c in public["items"]] == [kept]
    assert [r["text"] for r in public["items"][0]["replies"]] == ["感谢支持，我们会增设停放区。"]
    reader = Citizen(stack)
    endorsed = reader.http.post(f"{stack.base_url}/api/v1/comments/{kept}/endorsements",
                                json={"voter_token": reader.voter_token}, timeout=30)
    assert endorsed.status_code == 200 and endorsed.json()["support_count"] == 1


def test_votes_are_one_per_token_and_changeable(stack, staff):
    policy_id = new_policy(stack, staff)
    citizen = Citizen(stack)
    assert citizen.vote(policy_id, "support").status_code == 200
    changed = citizen.vote(policy_id, "oppose")
    assert changed.status_code == 200 and changed.json()["previous_stance"] == "support"
    assert Citizen(stack).vote(policy_id, "oppose", clause_number=2).status_code == 200
    poll = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}/poll")
    assert (poll["policy"]["support"], poll["policy"]["oppose"], poll["policy"]["total"]) == (0, 1, 1)
    assert next(c for c in poll["clauses"] if c["clause_number"] == 2)["oppose"] == 1
    bad = citizen.vote(policy_id, "maybe")
    assert bad.status_code == 400 and "stance" in bad.json()["error"]["fields"]


# --- explanations and coverage links ------------------------------------------------------------------------------


def test_published_explanation_is_public_and_sanitised(stack, staff):
    policy_id = new_policy(stack, staff)
    draft = call(stack, staff, "POST", f"/api/v1/staff/policies/{policy_id}/explanations", 201, json={
        "kind": "article", "title": "图解单车停放新规", "body_html": "<p>划线停放<img src=x onerror=alert(1)></p>"})
    assert "onerror" not in draft["body_html"]
    assert call(stack, requests, "GET", f"/api/v1/policies/{policy_id}/explanations") == []
    call(stack, staff, "POST", f"/api/v1/staff/explanations/{draft['explanation_id']}/publish", json={})
    public = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}/explanations")
    assert [e["title"] for e in public] == ["图解单车停放新规"]


def test_confirmed_coverage_link_is_public_for_the_policy_and_the_article(stack, staff):
    policy_id = new_policy(stack, staff)
    url = f"https://news.example.cn/bikes/{uuid.uuid4().hex[:8]}"
    link = call(stack, staff, "POST", f"/api/v1/staff/policies/{policy_id}/links", 201,
                json={"article_title": "单车乱停何时休", "article_url": url, "clause_number": 3})
    if link["state"] != "confirmed":
        link = call(stack, staff, "POST", f"/api/v1/staff/links/{link['link_id']}/decision",
                    json={"decision": "confirm"})
    assert link["state"] == "confirmed"
    public = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}/links")
    assert [item["article_url"] for item in public] == [url]
    # who decided, the score and the matched terms are for editors (schemas.PublicLinkSchema leaves them out)
    assert {"decided_by", "score", "matched_terms"}.isdisjoint(public[0]), public[0]
    by_article = call(stack, requests, "GET", "/api/v1/articles/consultations", params={"article_url": url})
    assert [item["policy_id"] for item in by_article] == [policy_id]


# --- feedback report and personal data ----------------------------------------------------------------------------


def test_feedback_report_is_published_as_json_html_and_csv_without_any_contact_value(stack, staff):
    policy_id = new_policy(stack, staff)
    text = f"第三条很好，有问题请打{PHONE}或写信到{EMAIL}。"
    approved = Citizen(stack).comment(policy_id, text=text, contact=PHONE, contact_consent=True, clause_number=3,
                                      display_name=f"李{EMAIL}").json()
    with_contact = Citizen(stack).comment(policy_id, text="同意。", contact=EMAIL, contact_consent=True).json()
    pending = Citizen(stack).comment(policy_id, text="还在审核的意见。").json()
    for comment in (approved, with_contact):
        call(stack, staff, "POST", f"/api/v1/staff/comments/{comment['comment_id']}/moderation",
             json={"action": "approve"})
    early = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}/report", 404)
    assert early["error"]["code"] == "not_found"
    call(stack, staff, "POST", f"/api/v1/staff/policies/{policy_id}/close", json={})
    call(stack, staff, "PUT", f"/api/v1/staff/policies/{policy_id}/report", json={
        "summary": "感谢市民参与。", "entries": [
            {"clause_number": 3, "summary": "多数意见支持划区停放", "decision": "adopted", "reason": "已采纳"},
            {"summary": "<b>总体</b>意见", "decision": "noted"}]})
    call(stack, staff, "POST", f"/api/v1/staff/policies/{policy_id}/report/publish", json={})

    report = call(stack, requests, "GET", f"/api/v1/policies/{policy_id}/report")
    assert report["state"] == "published" and report["comment_count"] >= 2
    page = requests.get(f"{stack.base_url}/policies/{policy_id}/report", headers={"Accept-Language": "zh-CN"},
                        timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "意见采纳情况" in page.text and "多数意见支持划区停放" in page.text and "采纳" in page.text
    assert "&lt;b&gt;总体&lt;/b&gt;" in page.text  # autoescaped
    published_local = dt.datetime.fromisoformat(report["published_at"]).astimezone(
        dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    assert f"{published_local} (Asia/Shanghai)" in page.text
    english = requests.get(f"{stack.base_url}/policies/{policy_id}/report?lang=en", timeout=30)
    assert "Feedback report" in english.text and "Adopted" in english.text
    missing_page = requests.get(f"{stack.base_url}/policies/987654/report", timeout=30)
    assert missing_page.status_code == 404 and missing_page.headers["Content-Type"].startswith("text/html")

    exported = requests.get(f"{stack.base_url}/api/v1/policies/{policy_id}/report/comments.csv", timeout=30)
    assert exported.status_code == 200 and exported.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["reference"] for row in rows} == {approved["reference"], with_contact["reference"]}
    assert pending["reference"] not in exported.text

    public_texts = [exported.text, page.text, english.text, str(approved), str(with_contact)]
    for path in (f"/api/v1/policies/{policy_id}", f"/api/v1/policies/{policy_id}/comments",
                 f"/api/v1/policies/{policy_id}/report", f"/api/v1/policies/{policy_id}/poll",
                 "/api/v1/policies?page_size=100"):
        public_texts.append(requests.get(f"{stack.base_url}{path}", timeout=30).text)
    found = eventually(lambda: requests.get(f"{stack.base_url}/api/v1/search", timeout=30,
                                            params={"q": "第三条很好", "doc_type": "comment"}).json()["total"])
    assert found, "the approved comment never reached the search index"
    public_texts.append(requests.get(f"{stack.base_url}/api/v1/search", params={"q": "第三条很好"}, timeout=30).text)
    for body in public_texts:
        assert PHONE not in body and EMAIL not in body


# --- the OpenAPI document -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(stack):
    response = requests.get(f"{stack.base_url}/api/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    return response.json()


def _resolve(document, node):
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_openapi_document_lists_every_table_route_with_its_method(openapi):
    assert openapi["openapi"].startswith("3.") and openapi["info"]["title"] and openapi["info"]["version"]
    for api in PUBLIC_ROUTES + STAFF_ROUTES:
        path = openapi_path(api.path)
        assert api.method.lower() in openapi["paths"].get(path, {}), f"{api.method} {path} missing"


def test_openapi_document_covers_every_api_entrypoint_of_the_gateway(openapi):
    from services.gateway.service import GatewayService

    described = {(api.method, api.path) for api in PUBLIC_ROUTES + STAFF_ROUTES + SPECIAL_ROUTES}
    for method, url, _doc in gateway_entrypoints(GatewayService):
        if url.startswith("/api/v1") or url == "/healthz":
            assert method.lower() in openapi["paths"].get(openapi_path(url), {}), f"{method} {url} undocumented"
            # a route outside the tables needs its own SPECIAL_ROUTES entry, so its body and errors are described
            assert (method, url) in described, f"{method} {url} has no table or SPECIAL_ROUTES entry"


def test_openapi_document_is_structurally_valid(openapi):
    """openapi-spec-validator is not installed here: check the rules a validator would, by hand."""
    bearer = openapi["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    operation_ids = []
    for path, operations in openapi["paths"].items():
        assert path.startswith("/") and "<" not in path and ">" not in path
        declared = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            assert method in {"get", "post", "put", "patch", "delete"}
            assert operation["responses"], f"{method} {path} has no responses"
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status)
                assert "description" in _resolve(openapi, response)
            parameters = [_resolve(openapi, p) for p in operation.get("parameters", [])]
            for parameter in parameters:
                assert parameter["in"] in {"path", "query", "header", "cookie"} and parameter["name"]
                assert "schema" in parameter
            in_path = {p["name"] for p in parameters if p["in"] == "path"}
            assert in_path == declared, f"{method} {path}: path parameters {in_path} != {declared}"
            assert all(p["required"] for p in parameters if p["in"] == "path")
            if "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                assert _resolve(openapi, schema)["type"] == "object"
            if "operationId" in operation:
                operation_ids.append(operation["operationId"])
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"


def test_openapi_staff_routes_need_a_bearer_token_and_public_ones_do_not(openapi):
    for api in STAFF_ROUTES:
        operation = openapi["paths"][openapi_path(api.path)][api.method.lower()]
        assert operation["security"] == [{"bearerAuth": []}], api.path
        assert {"401", "403"} <= set(operation["responses"])
    for api in PUBLIC_ROUTES:
        assert "security" not in openapi["paths"][openapi_path(api.path)][api.method.lower()]


def test_openapi_request_bodies_and_query_parameters_come_from_the_marshmallow_schemas(openapi):
    comment = openapi["paths"]["/api/v1/policies/{policy_id}/comments"]["post"]
    body = _resolve(openapi, comment["requestBody"]["content"]["application/json"]["schema"])
    assert {"text", "stance", "contact", "clause_number"} <= set(body["properties"])
    assert {"policy_id", "client_ip", "channel"}.isdisjoint(body["properties"])  # set by the URL and the gateway
    assert body["properties"]["text"]["maxLength"] == 5000 and set(body["required"]) == {"text", "stance"}
    assert "Idempotency-Key" in [p["name"] for p in comment["parameters"]]
    assert {"400", "409", "413", "429"} <= set(comment["responses"])
    create = openapi["paths"]["/api/v1/staff/policies"]["post"]
    create_body = _resolve(openapi, create["requestBody"]["content"]["application/json"]["schema"])
    assert {"title", "department"} <= set(create_body["required"])
    listed = openapi["paths"]["/api/v1/policies"]["get"]
    assert {"state", "department", "page", "page_size"} <= {p["name"] for p in listed["parameters"]}
    error = _resolve(openapi, comment["responses"]["400"])["content"]["application/json"]["schema"]
    assert "error" in _resolve(openapi, error)["properties"]
