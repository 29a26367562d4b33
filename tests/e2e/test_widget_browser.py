"""The embeddable widget in a real browser: headless Chromium loads the demo news site (which embeds the widget with
one script tag from the loopback twin origin, so the iframe is cross-origin as on a real news site), a reader votes,
comments on a clause and sees the pending message; staff approve and reply through the API; the reader reloads and
sees both. In Chinese and English, with storage blocked, and with XSS payloads that must not execute.

Also over plain HTTP: the CSP frame-ancestors header for allowed and disallowed origins, unknown site keys, and the
size budget of widget.js."""
from __future__ import annotations

import gzip
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from selenium.common.exceptions import NoSuchElementException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from services.demo import DEMO_POLICIES, DEMO_SITE_KEY, DemoClient, load_demo
from tests.e2e.browser import browser as browser_fixture
from tests.e2e.browser import screenshot
from tests.e2e.conftest import consultation_unit_of_work

pytestmark = [pytest.mark.rabbit]
browser = browser_fixture  # pytest finds fixtures among a module's names

WAIT_S = 45  # generous: these machines are shared and often busy


@pytest.fixture(scope="module")
def demo(stack, stack_env):
    """The demo content exactly as `balloon run` loads it (user, drafts, feeds, site key), plus a staff client."""
    load_demo(stack.base_url, {}, consultation_unit_of_work(stack_env))
    client = DemoClient(stack.base_url)
    client.login()
    titles = {p["title"]: p["policy_id"]
              for p in client.call("GET", "/api/v1/staff/policies", params={"page_size": 100})["items"]}
    client.policy_ids = {spec["language"]: titles[spec["title"]] for spec in DEMO_POLICIES}
    return client


def twin_url(base_url: str) -> str:
    """The demo site's address under localhost, while the widget is served from 127.0.0.1 (cross-origin)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://localhost:{parts.port}"


def open_article(driver, stack, slug: str, query: str = ""):
    driver.get(f"{twin_url(stack.base_url)}/demo/articles/{slug}{query}")
    frame = WebDriverWait(driver, WAIT_S).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "iframe.tb-consultation-frame")))
    driver.switch_to.frame(frame)
    WebDriverWait(driver, WAIT_S).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "h1.tb-title, .tb-unavailable")))
    WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script("return document.readyState") == "complete")
    return frame


def vote(driver, stance: str):
    driver.find_element(By.CSS_SELECTOR, f".tb-vote-form button[value='{stance}']").click()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: not d.find_element(By.CSS_SELECTOR, "[data-results]").get_attribute("hidden"))
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "tb-status").text.strip())
    pressed = driver.find_element(By.CSS_SELECTOR, f".tb-vote-form button[value='{stance}']")
    assert pressed.get_attribute("aria-pressed") == "true"
    counts = [int(driver.find_element(By.CSS_SELECTOR, f"[data-results] [data-count-of='{key}']").text)
              for key in ("support", "oppose", "neutral")]
    assert counts[("support", "oppose", "neutral").index(stance)] >= 1
    assert str(sum(counts)) in driver.find_element(By.CSS_SELECTOR, "[data-results] [data-total]").text
    return counts


def comment_on_clause(driver, clause_number: int, text: str, name: str = "", stance: str = "support") -> str:
    """Fill and send the comment form with the keyboard-reachable controls; returns the reference number.

    Every test submits from 127.0.0.1, which the consultation service limits to one comment per 3 seconds: when the
    widget says so (its friendly rate-limit message), wait as it asks and send again."""
    clause = driver.find_element(By.ID, f"tb-clause-{clause_number}")
    clause.find_element(By.TAG_NAME, "summary").click()
    clause.find_element(By.CSS_SELECTOR, "[data-comment-on]").click()
    assert Select(driver.find_element(By.ID, "tb-clause")).first_selected_option.get_attribute("value") == \
        str(clause_number)
    assert driver.switch_to.active_element == driver.find_element(By.ID, "tb-text")
    driver.find_element(By.CSS_SELECTOR, f"input[name=stance][value='{stance}']").click()
    driver.find_element(By.ID, "tb-text").send_keys(text)
    if name:
        driver.find_element(By.ID, "tb-name").send_keys(name)
    counter = driver.find_element(By.CSS_SELECTOR, "[data-counter]").text
    assert str(len(text)) in counter
    for _attempt in range(5):
        driver.find_element(By.CSS_SELECTOR, "#tb-comment-form button[type=submit]").click()
        WebDriverWait(driver, WAIT_S).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#tb-status [data-reference]")
            or d.find_element(By.ID, "tb-alert").text.strip())
        references = driver.find_elements(By.CSS_SELECTOR, "#tb-status [data-reference]")
        if references:
            return references[0].text
        alert = driver.find_element(By.ID, "tb-alert").text
        assert any(word in alert for word in ("seconds", "秒")), alert  # only the rate limit is expected here
        time.sleep(3.5)
    raise AssertionError("the comment was never accepted")


def find_comment(demo, policy_id: int, reference: str) -> dict:
    items = demo.call("GET", "/api/v1/staff/comments",
                      params={"queue": "all", "policy_id": policy_id, "limit": 100})["items"]
    return next(item for item in items if item["reference"] == reference)


def approve_and_reply(demo, comment_id: int, reply: str):
    demo.call("POST", f"/api/v1/staff/comments/{comment_id}/moderation", json={"action": "approve"})
    demo.call("POST", f"/api/v1/staff/comments/{comment_id}/replies", json={"text": reply})


def reload_until(driver, stack, slug: str, seen, seconds: float = WAIT_S):
    """Reload the article until the widget shows what `seen(driver)` looks for (events drop the cached page)."""
    deadline = time.monotonic() + seconds
    while True:
        driver.switch_to.default_content()
        open_article(driver, stack, slug)
        if seen(driver):
            return
        if time.monotonic() > deadline:
            raise AssertionError("the widget never showed the approved comment")
        time.sleep(1.0)


def comment_block(driver, marker: str):
    for item in driver.find_elements(By.CSS_SELECTOR, ".tb-comment"):
        if marker in item.text:
            return item
    return None


@pytest.mark.browser
@pytest.mark.parametrize("language, slug, pending_words", [
    ("zh-CN", "yibao-menzhen", "审核"),
    ("en", "cycling-lanes", "after review"),
])
def test_reader_votes_comments_on_a_clause_and_later_sees_it_with_the_official_reply(
        browser, request, stack, demo, language, slug, pending_words):
    driver = browser(language=language)
    open_article(driver, stack, slug)
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == language
    screenshot(driver, request, "1-loaded")

    vote(driver, "support")
    screenshot(driver, request, "2-voted")

    marker = f"widget-e2e-{uuid.uuid4().hex[:8]}"
    text = (f"第二条的起付标准建议再降低一些。{marker}" if language == "zh-CN"
            else f"Section 2 should protect the lanes at junctions too. {marker}")
    reference = comment_on_clause(driver, 2, text, name="Reader")
    assert pending_words in driver.find_element(By.ID, "tb-status").text
    screenshot(driver, request, "3-pending")

    comment = find_comment(demo, demo.policy_ids[language[:2]], reference)
    assert comment["clause_number"] == 2 and comment["channel"] == "widget"
    reply = f"official-reply-{marker}"
    approve_and_reply(demo, comment["comment_id"], reply)

    reload_until(driver, stack, slug, lambda d: (block := comment_block(d, marker)) is not None and reply in block.text)
    block = comment_block(driver, marker)
    assert "Reader" in block.text
    driver.execute_script("arguments[0].scrollIntoView()", block)
    screenshot(driver, request, "4-approved-with-reply")


@pytest.mark.browser
def test_widget_works_when_the_browser_blocks_storage(browser, request, stack, demo):
    driver = browser(language="zh-CN", block_storage=True)
    open_article(driver, stack, "yibao-menzhen")
    blocked = driver.execute_script(
        "try { window.localStorage.setItem('x', '1'); return false; } catch (e) { return true; }")
    assert blocked, "the browser was expected to refuse storage in this run"
    token = driver.find_element(By.CSS_SELECTOR, "[data-voter-token]").get_attribute("value")
    assert len(token) >= 16  # the per-page token stands in for the stored one
    vote(driver, "oppose")
    reference = comment_on_clause(driver, 1, f"存储被禁用时也能提交意见。{uuid.uuid4().hex[:8]}", stance="oppose")
    assert reference
    screenshot(driver, request, "pending-without-storage")


XSS_TEXTS = [
    '<script>window.__xss = 1; document.title = "pwned";</script>',
    '<img src=x onerror="window.__xss = 2; document.title = \'pwned\'">',
    '<a href="javascript:window.__xss = 3">click me</a> <iframe src="javascript:parent.__xss = 4"></iframe>',
    '"><svg onload="window.__xss = 5"></svg></textarea><script>window.__xss = 6</script><p title="',
    "<details open ontoggle=\"window.__xss = 7\"><summary>x</summary></details><style>*{display:none}</style>",
]
XSS_NAME = '<b onmouseover="window.__xss=8">Eve</b><script>'


@pytest.mark.browser
def test_script_in_comment_text_and_name_is_shown_as_text_and_never_runs(browser, request, stack, demo):
    driver = browser(language="en")
    open_article(driver, stack, "cycling-lanes")
    driver.switch_to.default_content()
    host_title = driver.title
    marker = f"xss-{uuid.uuid4().hex[:8]}"
    text = marker + " " + " ".join(XSS_TEXTS)
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, "iframe.tb-consultation-frame"))
    widget_title = driver.title
    reference = comment_on_clause(driver, 1, text, name=XSS_NAME, stance="neutral")
    comment = find_comment(demo, demo.policy_ids["en"], reference)
    approve_and_reply(demo, comment["comment_id"], '<script>window.__xss = 9</script> reply ' + marker)

    reload_until(driver, stack, "cycling-lanes", lambda d: comment_block(d, marker) is not None)
    block = comment_block(driver, marker)
    driver.execute_script("arguments[0].scrollIntoView()", block)
    assert "<script>window.__xss = 1;" in block.text  # shown, as text
    assert "onerror=" in block.text and "<b onmouseover=" in block.text
    assert block.find_elements(By.CSS_SELECTOR, "script, img, svg, iframe, a[href^='javascript'], style") == []
    handlers = driver.execute_script("""
        var names = [];
        arguments[0].querySelectorAll('*').forEach(function (el) {
          Array.prototype.forEach.call(el.attributes, function (a) { if (/^on/i.test(a.name)) names.push(a.name); });
          el.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
        });
        return names;""", block)
    assert handlers == []
    time.sleep(0.5)
    assert driver.execute_script("return window.__xss === undefined")
    assert driver.title == widget_title
    driver.switch_to.default_content()
    assert driver.execute_script("return window.__xss === undefined")
    assert driver.title == host_title
    screenshot(driver, request, "xss-shown-as-text")


@pytest.mark.browser
def test_article_page_shows_the_consultations_linked_to_its_canonical_url(browser, request, stack, demo):
    canonical = "https://jiangcheng-daily.example.cn/minsheng/2026/01/08/yibao-tujie.html"
    driver = browser(language="zh-CN")
    linked = demo.call("GET", "/api/v1/articles/consultations", params={"article_url": canonical})
    if not any(item["policy_id"] == demo.policy_ids["zh"] for item in linked):
        open_article(driver, stack, "yibao-tujie")
        assert "暂未关联" in driver.find_element(By.CSS_SELECTOR, ".tb-unavailable").text
        driver.switch_to.default_content()
        demo.call("POST", f"/api/v1/staff/policies/{demo.policy_ids['zh']}/links", json={
            "article_title": "医保门诊新规怎么影响你？一张图看懂报销变化", "article_url": canonical,
            "article_outlet": "江城日报", "article_published_at": "2026-01-08T08:00:00+08:00"})
    deadline = time.monotonic() + WAIT_S
    while True:
        driver.switch_to.default_content()
        open_article(driver, stack, "yibao-tujie")
        titles = driver.find_elements(By.CSS_SELECTOR, "h1.tb-title")
        if titles and titles[0].text == DEMO_POLICIES[0]["title"]:
            break
        assert time.monotonic() < deadline, "the linked consultation never appeared"
        time.sleep(1.0)
    coverage = driver.find_element(By.CSS_SELECTOR, "#tb-links-h").find_element(By.XPATH, "..").text
    assert "江城日报" in coverage
    screenshot(driver, request, "linked-consultation")


@pytest.mark.browser
def test_a_site_key_for_another_origin_cannot_be_framed_by_the_demo_site(browser, request, stack, demo):
    key = f"other-{uuid.uuid4().hex[:8]}"
    demo.call("POST", "/api/v1/staff/site-keys",
              json={"key": key, "name": "Elsewhere", "allowed_origins": ["https://news.example.com"]})
    driver = browser(language="en")
    driver.get(f"{twin_url(stack.base_url)}/demo/articles/cycling-lanes?site={key}")
    frame = WebDriverWait(driver, WAIT_S).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "iframe.tb-consultation-frame")))
    time.sleep(2.0)
    driver.switch_to.frame(frame)
    with pytest.raises((NoSuchElementException, TimeoutException)):
        WebDriverWait(driver, 3).until(ec.presence_of_element_located((By.CSS_SELECTOR, "h1.tb-title")))
    driver.switch_to.default_content()
    screenshot(driver, request, "blocked-by-frame-ancestors")


# --- over plain HTTP -------------------------------------------------------------------------------------------------


def frame_headers(stack, site: str, policy_id: int):
    return requests.get(f"{stack.base_url}/widget/frame", params={"site": site, "policy": policy_id}, timeout=30)


def frame_ancestors(response) -> list[str]:
    policy = response.headers["Content-Security-Policy"]
    directive = next(part.strip() for part in policy.split(";") if part.strip().startswith("frame-ancestors"))
    return directive.split()[1:]


def test_frame_ancestors_lists_exactly_the_site_keys_origins(stack, demo):
    key = f"news-{uuid.uuid4().hex[:8]}"
    demo.call("POST", "/api/v1/staff/site-keys", json={
        "key": key, "name": "News", "allowed_origins": ["https://news.example.com", "https://m.news.example.com"]})
    response = frame_headers(stack, key, demo.policy_ids["zh"])
    assert response.status_code == 200
    assert sorted(frame_ancestors(response)) == ["https://m.news.example.com", "https://news.example.com"]
    assert "https://evil.example.net" not in response.headers["Content-Security-Policy"]
    demo_site = frame_headers(stack, DEMO_SITE_KEY, demo.policy_ids["zh"])
    parts = urlsplit(stack.base_url)
    assert sorted(frame_ancestors(demo_site)) == sorted([f"http://127.0.0.1:{parts.port}",
                                                         f"http://localhost:{parts.port}"])
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_unknown_or_disabled_site_key_gets_a_neutral_unavailable_page(stack, demo):
    key = f"gone-{uuid.uuid4().hex[:8]}"
    demo.call("POST", "/api/v1/staff/site-keys", json={"key": key, "name": "Gone", "allowed_origins": []})
    demo.call("PATCH", f"/api/v1/staff/site-keys/{key}", json={"enabled": False})
    for site in ("no-such-key", key):
        response = requests.get(f"{stack.base_url}/widget/frame", params={"site": site, "policy": 1, "lang": "en"},
                                timeout=30)
        assert response.status_code == 404
        assert "not available" in response.text
        assert "Traceback" not in response.text and response.headers["Content-Type"].startswith("text/html")


def test_widget_js_is_served_under_the_size_budget(stack):
    response = requests.get(f"{stack.base_url}/widget.js", headers={"Accept-Encoding": "identity"}, timeout=30)
    assert response.status_code == 200 and "javascript" in response.headers["Content-Type"]
    assert len(gzip.compress(response.content, 9)) < 10 * 1024
    zipped = requests.get(f"{stack.base_url}/widget.js", headers={"Accept-Encoding": "gzip"}, timeout=30, stream=True)
    assert zipped.headers.get("Content-Encoding") == "gzip"
    assert len(zipped.raw.read(decode_content=False)) < 10 * 1024


@pytest.mark.browser
def test_widget_fits_a_320_pixel_phone_and_works_from_the_keyboard_alone(browser, request, stack, demo):
    from selenium.webdriver.common.keys import Keys

    driver = browser(language="en", device_width=320)
    open_article(driver, stack, "cycling-lanes")
    assert driver.execute_script("return window.innerWidth") <= 320
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(driver, request, "320px")
    target = driver.find_element(By.CSS_SELECTOR, ".tb-vote-form button[value='neutral']")
    for _ in range(40):  # Tab from the top of the widget to the Neutral button
        if driver.switch_to.active_element == target:
            break
        driver.switch_to.active_element.send_keys(Keys.TAB) if _ else \
            driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert driver.switch_to.active_element == target
    target.send_keys(Keys.ENTER)
    WebDriverWait(driver, WAIT_S).until(lambda d: target.get_attribute("aria-pressed") == "true")
    assert not driver.find_element(By.CSS_SELECTOR, "[data-results]").get_attribute("hidden")
    assert driver.switch_to.active_element == target  # focus stays where the reader is
    outline = driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle", target)
    assert outline != "none"  # the focused control is visibly marked
    screenshot(driver, request, "voted-by-keyboard")


@pytest.mark.browser
def test_without_javascript_the_standalone_page_takes_a_comment(browser, request, stack, demo):
    driver = browser(language="en", javascript=False)
    policy_id = demo.policy_ids["en"]
    driver.get(f"{stack.base_url}/widget/page?site={DEMO_SITE_KEY}&policy={policy_id}&lang=en")
    assert driver.find_element(By.CSS_SELECTOR, "h1.tb-title").text == DEMO_POLICIES[1]["title"]
    Select(driver.find_element(By.ID, "tb-clause")).select_by_value("3")
    marker = f"nojs-{uuid.uuid4().hex[:8]}"
    driver.find_element(By.ID, "tb-text").send_keys(f"Works without scripts too. {marker}")
    for _attempt in range(5):
        before = driver.find_element(By.TAG_NAME, "html")
        driver.find_element(By.CSS_SELECTOR, "#tb-comment-form button[type=submit]").click()
        WebDriverWait(driver, WAIT_S).until(ec.staleness_of(before))
        WebDriverWait(driver, WAIT_S).until(ec.presence_of_element_located((By.CSS_SELECTOR, "h1.tb-title")))
        if driver.find_elements(By.CSS_SELECTOR, "[data-receipt]"):
            break
        assert "seconds" in driver.find_element(By.ID, "tb-alert").text  # only the rate limit is expected here
        time.sleep(3.5)
    receipt = driver.find_element(By.CSS_SELECTOR, "[data-receipt]").text
    assert "after review" in receipt
    reference = receipt.rsplit(" ", 1)[-1]
    assert find_comment(demo, policy_id, reference)["clause_number"] == 3
    screenshot(driver, request, "no-javascript-receipt")
