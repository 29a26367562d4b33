"""The whole system as processes over the real broker: staff API → consultation → outbox → search, feeds →
newsfeed → search, health, crash recovery, and bad input."""
import datetime as dt
import time
import uuid

import pytest
import requests

from tests.integration.newsfeed import httpserver

feed_server = httpserver.feed_server

pytestmark = pytest.mark.rabbit

ZH_DRAFT = """为规范本市普通门诊医保报销，现公开征求意见。
第一条　为提高职工医保门诊保障水平，制定本办法。
第二条　普通门诊统筹起付标准为在职职工800元。
第三条　本办法自2027年1月1日起施行。
"""


def eventually(check, seconds=30.0, interval=0.3):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    return last


def publish(stack, staff, title, text, language="zh", department="市医疗保障局"):
    created = staff.post(f"{stack.base_url}/api/v1/staff/policies", json={
        "title": title, "summary": "", "department": department, "topics": [], "language": language, "text": text,
    }, timeout=30)
    assert created.status_code == 201, created.text
    policy_id = created.json()["policy_id"]
    close_at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).isoformat()
    opened = staff.post(f"{stack.base_url}/api/v1/staff/policies/{policy_id}/open", json={"close_at": close_at},
                        timeout=30)
    assert opened.status_code == 200, opened.text
    return policy_id


def search(stack, **params):
    response = requests.get(f"{stack.base_url}/api/v1/search", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def found(stack, doc_id, **params):
    return lambda: any(hit["doc_id"] == doc_id for hit in search(stack, **params)["hits"])


def test_health_is_ok_when_every_part_is_up(stack):
    response = requests.get(f"{stack.base_url}/healthz", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["checks"]["search"]["search_backend"] == "ok"


def test_published_policy_is_found_by_a_two_character_chinese_query_with_highlights(stack, staff):
    policy_id = publish(stack, staff, "门诊医保报销办法（征求意见稿）", ZH_DRAFT)
    assert eventually(found(stack, f"policy:{policy_id}", q="医保"))
    hits = search(stack, q="医保", doc_type="policy")["hits"]
    hit = next(h for h in hits if h["doc_id"] == f"policy:{policy_id}")
    assert "<mark>医保</mark>" in " ".join(s for snippets in hit["highlights"].values() for s in snippets)


def test_published_english_policy_is_found_by_an_english_query(stack, staff):
    text = "1. Purpose\nSafer protected cycling lanes for commuters.\n2. Scope\nAll arterial roads in the city.\n"
    policy_id = publish(stack, staff, "Cycling lanes consultation", text, language="en", department="Transport")
    assert eventually(found(stack, f"policy:{policy_id}", q="cycling lanes"))


def test_feed_items_are_ingested_over_http_and_become_searchable(stack, staff, feed_server):
    marker = f"征求意见{uuid.uuid4().hex[:6]}"
    rss = f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>示例日报</title>
    <link>http://example.test/</link><description>新闻</description><language>zh-cn</language>
    <item><title>医保门诊报销新政{marker}</title><link>http://example.test/a/{marker}</link>
    <guid>{marker}</guid><pubDate>Mon, 02 Nov 2026 08:00:00 +0800</pubDate>
    <description>本市拟提高医保门诊报销比例，{marker}。</description></item></channel></rss>""".encode()
    feed_server.serve("/news.xml", rss, content_type="application/rss+xml")
    added = staff.post(f"{stack.base_url}/api/v1/staff/feeds",
                       json={"url": feed_server.url("/news.xml"), "outlet": "示例日报", "poll_interval_s": 60}, timeout=30)
    assert added.status_code == 201, added.text
    feed_id = added.json()["id"]
    polled = staff.post(f"{stack.base_url}/api/v1/staff/feeds/{feed_id}/poll", json={}, timeout=30)
    assert polled.status_code == 200, polled.text
    assert eventually(lambda: search(stack, q=marker, doc_type="article")["total"] == 1)


def test_policy_published_while_search_is_down_is_indexed_after_it_restarts(stack, staff):
    stack.kill("search")
    try:
        policy_id = publish(stack, staff, "住房租赁补贴办法（征求意见稿）", "第一条　为稳定房价和租金，制定本办法。\n第二条　本办法自公布之日起施行。\n")
        time.sleep(1.0)
    finally:
        stack.start("search")
    assert eventually(found(stack, f"policy:{policy_id}", q="房价"), seconds=60)


def test_health_names_a_stopped_service_and_recovers(stack):
    stack.stop("newsfeed")
    try:
        failing = eventually(lambda: _failing_parts(stack), seconds=30)
        assert failing and "newsfeed.service" in failing
    finally:
        stack.start("newsfeed")
    assert eventually(lambda: requests.get(f"{stack.base_url}/healthz", timeout=30).status_code == 200, seconds=60)


def _failing_parts(stack):
    response = requests.get(f"{stack.base_url}/healthz", timeout=30)
    return response.json()["failing"] if response.status_code == 503 else None


@pytest.mark.parametrize("method, path, kwargs, status, field", [
    ("GET", "/api/v1/search", {"params": {"q": "医保", "sort": "sideways"}}, 400, "sort"),
    ("GET", "/api/v1/search", {"params": {"page": "0"}}, 400, "page"),
    ("GET", "/api/v1/policies/999999", {}, 404, None),
    ("POST", "/api/v1/policies/1/comments", {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
     400, None),
    ("POST", "/api/v1/policies/1/comments", {"json": {"text": "x" * 70000}}, 413, None),
    ("POST", "/api/v1/staff/policies", {"json": {"title": "t"}}, 401, None),
])
def test_bad_public_requests_get_a_json_4xx_with_field_messages(stack, method, path, kwargs, status, field):
    response = requests.request(method, f"{stack.base_url}{path}", timeout=30, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"]
    if field:
        assert field in error["fields"]


def test_invalid_staff_input_lists_each_bad_field_in_the_readers_language(stack, staff):
    response = staff.post(f"{stack.base_url}/api/v1/staff/policies?lang=en", json={"title": "", "topics": "x"},
                          timeout=30)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert {"title", "department"} <= set(fields)
    chinese = staff.post(f"{stack.base_url}/api/v1/staff/policies", json={"title": ""}, timeout=30,
                         headers={"Accept-Language": "zh-CN"}).json()["error"]["fields"]
    assert chinese["title"] != fields["title"]


def run_balloon(stack_env, *args):
    import os
    import subprocess
    import sys

    env = {**os.environ, **stack_env["env"]}
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_reindex_rebuilds_the_index_from_the_owning_services(stack, stack_env, staff):
    policy_id = publish(stack, staff, "养老服务补贴办法（征求意见稿）", "第一条　为完善养老服务补贴，制定本办法。\n")
    assert eventually(found(stack, f"policy:{policy_id}", q="养老"))
    result = run_balloon(stack_env, "reindex")
    assert result.returncode == 0, result.stderr
    assert "reindexed" in result.stdout
    assert found(stack, f"policy:{policy_id}", q="养老")()
    assert found(stack, f"clause:{policy_id}:1", q="养老")()


def test_dead_letter_queues_can_be_listed(stack, stack_env):
    vhost = stack_env["env"]["AMQP_URI"].rsplit("/", 1)[1]
    result = run_balloon(stack_env, "dead-letters", "list")
    assert result.returncode == 0, result.stderr
    assert "evt-consultation-policy_published--search.on_policy_published.dead" in result.stdout, (vhost, result.stdout)


def test_cli_errors_are_one_readable_line(stack_env):
    result = run_balloon({"env": {**stack_env["env"], "AMQP_URI": "amqp://guest:guest@127.0.0.1:1/"}}, "reindex",
                         "--timeout", "5")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("balloon:")


def test_wrong_password_is_a_401_not_a_server_error(stack):
    response = requests.post(f"{stack.base_url}/api/v1/auth/token", json={"username": "demo", "password": "wrong"},
                             timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
