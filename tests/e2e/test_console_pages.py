"""Every console page with real content from the running services (the demo drafts, feeds and site key, a comment,
a revision, an explanation), in Chinese and in English: each answers 200 and renders the real data shapes the
services send (datetimes, chapters, nested tallies). Screenshots of the main pages are saved for review."""
import re
import time

import pytest
import requests

from services.demo import DEMO_PASSWORD, DEMO_USER, load_demo
from services.gateway.routes_console import CONSOLE_ROUTES
from tests.e2e.browser import browser, screenshot  # noqa: F401 - pytest finds the fixture by name
from tests.e2e.conftest import consultation_unit_of_work
from tests.e2e.test_console_authorization import admin_headers, sign_in

pytestmark = pytest.mark.rabbit


@pytest.fixture(scope="module")
def content(stack, stack_env):
    """The demo content plus one comment, one revision and one explanation on the Chinese demo draft."""
    load_demo(stack.base_url, {}, consultation_unit_of_work(stack_env))
    base, headers = stack.base_url, admin_headers(stack, stack_env)
    policies = requests.get(f"{base}/api/v1/staff/policies", params={"page_size": 100}, headers=headers,
                            timeout=30).json()["items"]
    policy = next(p for p in policies if p["title"].startswith("职工基本医疗保险门诊费用报销管理办法"))
    detail = requests.get(f"{base}/api/v1/staff/policies/{policy['policy_id']}", headers=headers, timeout=30).json()
    for _attempt in range(5):
        comment = requests.post(f"{base}/api/v1/policies/{policy['policy_id']}/comments", timeout=30, json={
            "text": "建议把门诊报销比例再提高一些，联系邮箱 someone@example.com", "stance": "suggestion",
            "clause_number": detail["clauses"][0]["number"]})
        if comment.status_code != 429:
            break
        time.sleep(float(comment.headers.get("Retry-After", "3")))
    assert comment.status_code == 201, comment.text
    text = "\n".join(f"{c['label']}　{c['text']}" for c in detail["clauses"][:-1]) + "\n"
    revised = requests.post(f"{base}/api/v1/staff/policies/{policy['policy_id']}/versions", headers=headers,
                            timeout=30, json={"text": text.replace("。", "，并按年度调整。", 1), "change_note": "测试修订"})
    assert revised.status_code == 201, revised.text
    explanation = requests.post(f"{base}/api/v1/staff/policies/{policy['policy_id']}/explanations", headers=headers,
                                timeout=30, json={"kind": "article", "title": "一图读懂", "body_html": "<p>要点</p>"})
    assert explanation.status_code == 201, explanation.text
    site_keys = requests.get(f"{base}/api/v1/staff/site-keys", headers=headers, timeout=30).json()
    return {"policy_id": policy["policy_id"], "comment_id": comment.json()["comment_id"],
            "explanation_id": explanation.json()["explanation_id"], "key": site_keys[0]["key"],
            "link_id": 1, "feed_id": 1, "user_id": 1, "name": "console.css"}


def concrete(path: str, ids: dict) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda match: str(ids[match.group(1)]), path)


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_every_console_page_renders_the_services_real_data(stack, content, language):
    session = sign_in(stack, DEMO_USER, DEMO_PASSWORD)
    failures = []
    for spec in CONSOLE_ROUTES:
        if spec.method != "GET":
            continue
        url = f"{stack.base_url}{concrete(spec.path, content)}"
        response = session.get(url, params={"lang": language}, allow_redirects=False, timeout=30)
        expected = 303 if spec.view == "login_page" else 200
        if response.status_code != expected or "Something went wrong" in response.text or "出错了" in response.text:
            failures.append(f"{spec.path}: {response.status_code} {response.text[-300:]}")
    assert not failures, "\n".join(failures)


@pytest.mark.browser
def test_the_main_pages_look_right_with_the_demo_content(stack, content, browser, request):  # noqa: F811
    from tests.e2e.test_console_browser import sign_in as browser_sign_in
    from tests.e2e.test_console_browser import wait_for

    driver = browser(language="zh-CN", width=1280, height=1000)
    browser_sign_in(driver, stack.base_url, DEMO_USER, DEMO_PASSWORD)
    policy = content["policy_id"]
    pages = {
        "policies": "/console/policies",
        "policy": f"/console/policies/{policy}",
        "diff": f"/console/policies/{policy}/diff",
        "moderation": f"/console/moderation?policy_id={policy}",
        "comment": f"/console/comments/{content['comment_id']}",
        "explanation": f"/console/policies/{policy}/explanations/{content['explanation_id']}",
        "profile": f"/console/policies/{policy}/profile",
        "feeds": "/console/feeds",
        "users": "/console/users",
        "site-keys": "/console/site-keys",
        "audit": "/console/audit",
    }
    for name, path in pages.items():
        driver.get(f"{stack.base_url}{path}")
        wait_for(driver, "main h1")
        assert driver.find_elements("css selector", "main h1")[0].text not in ("出错了", "未找到")
        screenshot(driver, request, name)
    driver.get(f"{stack.base_url}/console/policies/{policy}/diff")
    assert driver.find_elements("css selector", "#diff .change-changed ins, #diff .change-removed")
    driver.get(f"{stack.base_url}/console/moderation?policy_id={policy}&lang=en")
    item = wait_for(driver, f'.queue-item[data-comment-id="{content["comment_id"]}"]')
    assert "someone@example.com" not in item.text
    screenshot(driver, request, "moderation-en")


@pytest.mark.browser
def test_an_officer_revises_a_draft_in_the_browser_and_sees_the_clause_diff(stack, content, browser, request):  # noqa: F811
    from tests.e2e.test_console_browser import navigation, notice_of, set_value, wait_for
    from tests.e2e.test_console_browser import sign_in as browser_sign_in

    driver = browser(language="zh-CN")
    browser_sign_in(driver, stack.base_url, DEMO_USER, DEMO_PASSWORD)
    driver.get(f"{stack.base_url}/console/policies/{content['policy_id']}/revise")
    text = driver.find_element("id", "f-text").get_attribute("value")
    assert text.startswith("第一条") or "第一条" in text  # the current version, ready to edit
    set_value(driver, "f-text", text.replace("第一条", "第一条　（修订）", 1) + "第九十九条　本办法由市医疗保障局负责解释。\n")
    set_value(driver, "f-change_note", "补充解释权条款")
    driver.find_element("css selector", 'button[name="intent"][value="preview"]').click()
    assert "第九十九条" in wait_for(driver, "#preview").text
    with navigation(driver):
        driver.find_element("id", "preview-save").click()
    assert notice_of(driver) == "新版本已保存。"
    assert "/diff?v_from=" in driver.current_url
    assert "第九十九条" in driver.find_element("css selector", "#diff .change-added").text
    assert driver.find_elements("css selector", "#diff .change-changed ins")
    screenshot(driver, request, "revision-diff")
