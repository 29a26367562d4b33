"""The staff console in headless Chromium, each role doing its main job end to end on the running stack:

the policy officer pastes a Chinese draft, previews its clauses, saves and opens it; comments arrive through the
public API; the moderator approves one and rejects another with the keyboard; the officer replies; the editor adds a
local news feed, polls it, confirms the link the system suggests and publishes an explanation (and the public side
shows both); the officer closes the consultation and publishes the feedback report. Screenshots of every step are
saved under test-output/<test name>/.
"""
import contextlib
import datetime as dt
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.e2e.browser import browser, screenshot  # noqa: F401 - pytest finds the fixture by name
from tests.e2e.test_console_authorization import admin_headers, create_staff
from tests.integration.newsfeed import httpserver

feed_server = httpserver.feed_server

pytestmark = [pytest.mark.rabbit, pytest.mark.browser]

WAIT_S = 20


def draft_text(marker: str) -> str:
    return (
        f"为规范本市普通门诊医保报销（{marker}），现公开征求意见。\n"
        "第一条　为提高职工医保门诊保障水平，减轻参保人员门诊医疗费用负担，制定本办法。\n"
        "第二条　普通门诊统筹起付标准为在职职工800元，退休人员600元。\n"
        "第三条　本办法自2027年1月1日起施行。\n"
    )


def news_feed(marker: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>示例日报</title>
    <link>http://news.example.test/</link><description>新闻</description><language>zh-cn</language>
    <item><title>职工医保门诊起付标准拟下调 {marker}</title><link>http://news.example.test/a/{marker}</link>
    <guid>{marker}</guid><pubDate>Mon, 02 Nov 2026 08:00:00 +0800</pubDate>
    <description>本市拟提高职工医保门诊保障水平，普通门诊统筹起付标准为在职职工800元、退休人员600元，
    减轻参保人员门诊医疗费用负担。门诊医保报销办法正在公开征求意见。{marker}</description></item>
    </channel></rss>""".encode()


def set_value(driver, element_id: str, value: str) -> None:
    """Fill a field at once (send_keys types long Chinese text character by character)."""
    element = driver.find_element("id", element_id)
    driver.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        element, value)


def wait_for(driver, css: str, seconds: float = WAIT_S):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))
    except TimeoutException:
        main = driver.find_elements(By.TAG_NAME, "main")
        raise AssertionError(f"{css} did not appear on {driver.current_url}: "
                             f"{main[0].text[:800] if main else driver.page_source[:800]}") from None


@contextlib.contextmanager
def navigation(driver):
    """Wait, after the block, until the browser has left the page it was on (a form was submitted and answered)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old_page = driver.find_element("tag name", "html")
    yield
    WebDriverWait(driver, WAIT_S).until(expected_conditions.staleness_of(old_page))


def notice_of(driver) -> str:
    return wait_for(driver, "#notice").text


def accept_confirmation(driver) -> None:
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S).until(expected_conditions.alert_is_present()).accept()


def sign_in(driver, base_url: str, username: str, password: str) -> None:
    driver.get(f"{base_url}/console/login")
    set_value(driver, "f-username", username)
    driver.find_element("id", "f-password").send_keys(password)
    driver.find_element("id", "sign-in").click()
    wait_for(driver, "#logout")


def eventually(check, seconds: float = 60.0, interval: float = 1.0):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


@pytest.fixture(scope="module")
def accounts(stack, stack_env):
    headers = admin_headers(stack, stack_env)
    return {role: create_staff(stack, headers, [role], prefix=f"ui-{role.replace('_', '-')}")
            for role in ("policy_officer", "moderator", "editor")}


def test_each_role_does_its_main_job_in_the_browser(stack, accounts, browser, request, feed_server):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    base = stack.base_url
    marker = uuid.uuid4().hex[:8]
    title = f"门诊医保报销办法（征求意见稿）{marker}"

    # --- policy officer: paste, preview, save, open -------------------------------------------------------------
    officer = browser(language="zh-CN")
    sign_in(officer, base, *accounts["policy_officer"])
    officer.get(f"{base}/console/policies/new")
    set_value(officer, "f-title", title)
    set_value(officer, "f-department", "市医疗保障局")
    set_value(officer, "f-text", draft_text(marker))
    officer.find_element("id", "preview-button").click()
    preview = wait_for(officer, "#preview")
    numbers = [li.get_attribute("data-clause-number") for li in preview.find_elements("css selector", "li.clause")]
    assert numbers == ["1", "2", "3"]
    assert "识别出 3 条" in preview.text
    screenshot(officer, request, "01-officer-preview")
    with navigation(officer):
        officer.find_element("id", "save-button").click()
    assert notice_of(officer) == "草案已保存。"
    policy_id = int(officer.current_url.split("/console/policies/")[1].split("?")[0])
    close_at = dt.datetime.now(ZoneInfo("Asia/Shanghai")) + dt.timedelta(days=10)
    set_value(officer, "f-open-close_at", close_at.strftime("%Y-%m-%dT%H:%M"))
    screenshot(officer, request, "02-officer-draft-saved")
    with navigation(officer):
        officer.find_element("id", "open-button").click()
    assert notice_of(officer) == "已开始征求意见。"
    assert "正在征求意见" in officer.find_element("css selector", ".meta").text
    screenshot(officer, request, "03-officer-opened")

    # --- comments arrive through the public API ------------------------------------------------------------------
    def comment(text, stance, clause):
        for _attempt in range(5):  # one submission per address every 3 s: wait as Retry-After says
            response = requests.post(f"{base}/api/v1/policies/{policy_id}/comments", timeout=30, json={
                "text": text, "stance": stance, "clause_number": clause, "display_name": "王先生"})
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get("Retry-After", "3")))
        assert response.status_code == 201, response.text
        return response.json()["comment_id"]

    good = comment("第二条起付标准偏高，建议降到500元。有事请打13800138000。", "oppose", 2)
    spam = comment("特价药品批发，加微信购买！！！", "neutral", 1)

    # --- moderator: approve with "a", reject with "r", a reason and Enter -----------------------------------------
    moderator = browser(language="zh-CN")
    sign_in(moderator, base, *accounts["moderator"])
    moderator.get(f"{base}/console/moderation?policy_id={policy_id}")
    first = wait_for(moderator, f'.queue-item[data-comment-id="{good}"]')
    assert "13800138000" not in first.text  # the phone number is redacted in the queue
    assert "current" in first.get_attribute("class")
    screenshot(moderator, request, "04-moderator-queue")
    with navigation(moderator):
        ActionChains(moderator).send_keys("a").perform()
    assert notice_of(moderator) == "意见已处理。"
    assert not moderator.find_elements("css selector", f'.queue-item[data-comment-id="{good}"]')
    wait_for(moderator, f'.queue-item[data-comment-id="{spam}"].current')
    ActionChains(moderator).send_keys("r").perform()
    reason = moderator.switch_to.active_element
    assert reason.get_attribute("id") == f"reason-{spam}"
    Select(reason).select_by_value("spam")
    with navigation(moderator):
        reason.send_keys(Keys.ENTER)
    assert notice_of(moderator) == "意见已处理。"
    assert moderator.find_elements("id", "queue-empty")
    screenshot(moderator, request, "05-moderator-queue-done")
    moderator.get(f"{base}/console/comments/{spam}")
    history = wait_for(moderator, "#history").text
    assert accounts["moderator"][0] in history and "垃圾信息" in history
    moderator.get(f"{base}/console/comments/{good}")
    moderator.find_element("id", "show-original").click()
    assert "13800138000" in wait_for(moderator, "#original-text").text  # the original, for moderators only
    screenshot(moderator, request, "06-moderator-original-text")

    # --- policy officer: reply --------------------------------------------------------------------------------------
    officer.get(f"{base}/console/policies/{policy_id}/comments?clause=2")
    wait_for(officer, f"#comment-{good}")
    set_value(officer, f"reply-{good}", "感谢您的意见，我们将认真研究起付标准。")
    with navigation(officer):
        officer.find_element("css selector", f"#comment-{good} .reply-form button").click()
    assert notice_of(officer) == "回复已发布。"
    assert "感谢您的意见" in officer.find_element("css selector", f"#comment-{good} .reply").text
    screenshot(officer, request, "07-officer-replied")
    public = requests.get(f"{base}/api/v1/policies/{policy_id}/comments", timeout=30).json()["items"]
    assert [c["comment_id"] for c in public] == [good] and public[0]["replies"]

    # --- editor: feed → suggestion → confirm; explanation → publish ----------------------------------------------
    feed_server.serve("/console-news.xml", news_feed(marker), content_type="application/rss+xml")
    feed_url = feed_server.url("/console-news.xml")
    editor = browser(language="zh-CN")
    sign_in(editor, base, *accounts["editor"])
    editor.get(f"{base}/console/feeds")
    set_value(editor, "f-url", feed_url)
    set_value(editor, "f-outlet", "示例日报")
    with navigation(editor):
        editor.find_element("css selector", "#feed-form button[type=submit]").click()
    assert notice_of(editor) == "新闻源已添加。"
    with navigation(editor):
        editor.find_element("xpath", f'//tr[contains(., "{feed_url}")]//button[contains(@class, "poll-feed")]').click()
    assert notice_of(editor) == "新闻源已抓取。"
    screenshot(editor, request, "08-editor-feed-polled")

    def suggestion_listed():
        editor.get(f"{base}/console/policies/{policy_id}/links")
        return editor.find_elements("css selector", "#suggested .confirm-link")

    assert eventually(suggestion_listed), "no link suggestion appeared for the matching article"
    row = editor.find_element("css selector", "#suggested tr[data-link-id]")
    assert marker in row.text and row.find_elements("css selector", ".term")  # score and matched terms shown
    screenshot(editor, request, "09-editor-suggestion")
    with navigation(editor):
        row.find_element("css selector", ".confirm-link").click()
    assert notice_of(editor) == "关联已确认。"
    assert marker in editor.find_element("id", "confirmed").text

    editor.get(f"{base}/console/policies/{policy_id}/explanations")
    set_value(editor, "f-title", f"图解：门诊起付标准调整 {marker}")
    set_value(editor, "f-body_html", "<p>起付标准<strong>下调</strong>。</p><script>alert('x')</script>")
    editor.find_element("css selector", 'input[name="clause_numbers"][value="2"]').click()
    with navigation(editor):
        editor.find_element("id", "publish-explanation").click()
    assert notice_of(editor) == "解读已发布。"
    assert "已发布" in editor.find_element("id", "explanations").text
    screenshot(editor, request, "10-editor-explanation-published")
    explanations = requests.get(f"{base}/api/v1/policies/{policy_id}/explanations", timeout=30).json()
    assert explanations[0]["clause_numbers"] == [2] and "<script>" not in explanations[0]["body_html"]
    links = requests.get(f"{base}/api/v1/policies/{policy_id}/links", timeout=30).json()
    assert any(marker in link["article_title"] for link in links)
    widget = f"{base}/widget/page?policy={policy_id}"

    def widget_shows_both():
        page = requests.get(widget, timeout=30)
        return page.status_code == 200 and marker in page.text and "图解" in page.text

    assert eventually(widget_shows_both, seconds=30), "the widget does not show the explanation and the coverage"
    editor.get(widget)
    screenshot(editor, request, "11-widget-shows-explanation-and-coverage")

    # --- policy officer: close and publish the feedback report -----------------------------------------------------
    officer.get(f"{base}/console/policies/{policy_id}")
    with navigation(officer):
        officer.find_element("id", "close-button").click()
        accept_confirmation(officer)
    assert notice_of(officer) == "征求意见已截止。"
    officer.find_element("id", "report-link").click()
    wait_for(officer, "#report-form")
    set_value(officer, "f-summary", "共收到意见1条，已逐条研究。")
    set_value(officer, "f-entries-2-summary", "起付标准偏高。")
    Select(officer.find_element("id", "f-entries-2-decision")).select_by_value("partly_adopted")
    set_value(officer, "f-entries-2-reason", "退休人员起付标准下调至500元。")
    screenshot(officer, request, "12-officer-report-draft")
    with navigation(officer):
        officer.find_element("id", "publish-report").click()
        accept_confirmation(officer)
    assert notice_of(officer) == "意见采纳情况已发布。"
    assert "部分采纳" in wait_for(officer, "#report-entries").text
    screenshot(officer, request, "13-officer-report-published")
    report = requests.get(f"{base}/api/v1/policies/{policy_id}/report", timeout=30)
    assert report.status_code == 200, report.text
    assert report.json()["entries"][0]["decision"] == "partly_adopted"


def test_the_console_speaks_english_on_request_and_remembers_it(stack, accounts, browser, request):  # noqa: F811
    driver = browser(language="zh-CN")
    driver.get(f"{stack.base_url}/console/login")
    assert driver.find_element("tag name", "h1").text == "登录工作台"
    with navigation(driver):
        driver.find_element("id", "lang-en").click()
    assert driver.find_element("tag name", "h1").text == "Sign in to the staff console"
    sign_in(driver, stack.base_url, *accounts["editor"])
    assert "Feeds" in driver.find_element("css selector", "nav").text  # the choice outlives the sign-in
    assert driver.find_element("tag name", "html").get_attribute("lang") == "en"
    screenshot(driver, request, "english-start-page")


def test_a_form_error_is_announced_and_linked_to_its_field(stack, accounts, browser, request):  # noqa: F811
    driver = browser(language="zh-CN")
    sign_in(driver, stack.base_url, *accounts["policy_officer"])
    driver.get(f"{stack.base_url}/console/policies/new")
    set_value(driver, "f-department", "市医疗保障局")
    set_value(driver, "f-text", "第一条　为规范管理，制定本办法。\n第三条　本办法自公布之日起施行。\n")
    driver.find_element("id", "save-button").click()
    summary = wait_for(driver, "#error-summary")
    assert driver.switch_to.active_element == summary  # announced: focus moves to the list of problems
    link = summary.find_element("css selector", 'a[href="#f-title"]')
    field = driver.find_element("id", "f-title")
    assert field.get_attribute("aria-invalid") == "true"
    assert "f-title-error" in field.get_attribute("aria-describedby")
    assert driver.find_element("id", "f-title-error").text == link.text == "标题须为 1 至 300 字。"
    assert "第三条" in driver.find_element("css selector", "#preview .warnings").text  # the numbering gap
    assert driver.find_element("id", "f-text").get_attribute("value").startswith("第一条")  # nothing typed is lost
    screenshot(driver, request, "form-errors")
