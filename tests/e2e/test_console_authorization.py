"""The staff console over real HTTP: every console route and action as every role and as an anonymous visitor,
forged form posts, the session cookie's attributes, sign-out and lock-out after repeated wrong passwords.

The list of routes comes from routes_console.CONSOLE_ROUTES (and is checked against the entrypoints the gateway
really registers), so a new page cannot escape the matrix. Ids in the URLs belong to nothing: an allowed role may
get 400/404/409 for them, which still proves the role gate opened; a denied one must get 403 (or, signed out, be sent
to the sign-in page / get 401) before anything runs.
"""
import re
import uuid

import pytest
import requests

from services.demo import DEMO_PASSWORD, DEMO_USER, ensure_demo_user
from services.gateway.auth import SESSION_COOKIE
from services.gateway.routes_console import CONSOLE_ROUTES, LOGIN_CSRF_COOKIE, allowed
from tests.e2e.conftest import consultation_unit_of_work

pytestmark = pytest.mark.rabbit

UNKNOWN_ID = 987654
ROLE_NAMES = ("policy_officer", "editor", "moderator", "admin")
_VARIABLE = re.compile(r"<(?:(\w+):)?(\w+)>")
_HIDDEN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def concrete(path: str) -> str:
    def value(match):
        converter, name = match.group(1), match.group(2)
        if name == "name":
            return "console.css"
        return str(UNKNOWN_ID) if converter == "int" else "no-such-key"

    return _VARIABLE.sub(value, path)


def admin_headers(stack, stack_env) -> dict:
    ensure_demo_user(consultation_unit_of_work(stack_env))
    token = requests.post(f"{stack.base_url}/api/v1/auth/token",
                          json={"username": DEMO_USER, "password": DEMO_PASSWORD}, timeout=30).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def create_staff(stack, headers, roles, prefix="console") -> tuple[str, str]:
    username, password = f"{prefix}-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    created = requests.post(f"{stack.base_url}/api/v1/staff/users", headers=headers, timeout=30,
                            json={"username": username, "password": password, "roles": list(roles)})
    assert created.status_code == 201, created.text
    return username, password


def sign_in(stack, username, password) -> requests.Session:
    """A requests session signed in through the console's own form (login CSRF cookie and hidden field)."""
    session = requests.Session()
    page = session.get(f"{stack.base_url}/console/login", timeout=30)
    assert page.status_code == 200, page.text
    token = _HIDDEN_CSRF.search(page.text).group(1)
    response = session.post(f"{stack.base_url}/console/login", allow_redirects=False, timeout=30,
                            data={"username": username, "password": password, "csrf_token": token, "next": "/console"})
    assert response.status_code == 303, response.text
    assert session.cookies.get(SESSION_COOKIE, path="/console")
    return session


def csrf_of(session, stack) -> str:
    page = session.get(f"{stack.base_url}/console", timeout=30)
    assert page.status_code == 200, page.text
    return _HIDDEN_CSRF.search(page.text).group(1)


@pytest.fixture(scope="module")
def console_sessions(stack, stack_env):
    """One signed-in console session (cookie value and its CSRF token) per role."""
    headers = admin_headers(stack, stack_env)
    sessions = {}
    for role in ROLE_NAMES:
        session = sign_in(stack, *create_staff(stack, headers, [role], prefix=role.replace("_", "-")))
        sessions[role] = {"cookie": session.cookies.get(SESSION_COOKIE, path="/console"),
                          "csrf": csrf_of(session, stack)}
    return sessions


def send(stack, spec, credentials=None):
    """One request to a console route, fresh cookies each time (so signing out in one case cannot leak)."""
    cookies = {SESSION_COOKIE: credentials["cookie"]} if credentials else {}
    data = {"csrf_token": credentials["csrf"]} if credentials and spec.method == "POST" else None
    return requests.request(spec.method, f"{stack.base_url}{concrete(spec.path)}", data=data, cookies=cookies,
                            allow_redirects=False, timeout=30)


def _protected_routes():
    return [spec for spec in CONSOLE_ROUTES if spec.roles is not None]


def test_every_console_entrypoint_of_the_gateway_is_in_the_route_table():
    from services.gateway.openapi import gateway_entrypoints
    from services.gateway.service import GatewayService

    registered = {(method, url) for method, url, _doc in gateway_entrypoints(GatewayService)
                  if url.startswith("/console")}
    assert registered == {(spec.method, spec.path) for spec in CONSOLE_ROUTES}


@pytest.mark.parametrize("spec", _protected_routes(), ids=lambda spec: f"{spec.method} {spec.path}")
def test_signed_out_visitors_are_sent_to_sign_in_or_refused(stack, spec):
    response = send(stack, spec)
    if spec.method == "GET":
        assert response.status_code == 303, response.text
        assert response.headers["Location"].startswith("/console/login?next=")
    else:
        assert response.status_code == 401, response.text


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_each_role_reaches_exactly_the_console_routes_the_table_allows(stack, console_sessions, role):
    wrong = []
    for spec in _protected_routes():
        if spec.view == "logout":
            continue  # ends the session this loop relies on; covered by its own test
        response = send(stack, spec, console_sessions[role])
        opened = response.status_code not in (401, 403) and "/console/login" not in response.headers.get(
            "Location", "")
        if opened != allowed(spec, {"roles": [role]}) or response.status_code >= 500:
            wrong.append(f"{spec.method} {spec.path}: {response.status_code}")
    assert not wrong, f"{role}: " + "; ".join(wrong)


@pytest.mark.parametrize("forged", ["missing", "wrong", "another session's"])
def test_a_forged_console_post_is_refused_and_changes_nothing(stack, stack_env, console_sessions, forged):
    title = f"伪造请求{uuid.uuid4().hex[:6]}"
    officer = console_sessions["policy_officer"]
    data = {"title": title, "department": "市医疗保障局", "text": "第一条　为规范管理，制定本办法。\n", "intent": "save"}
    if forged == "wrong":
        data["csrf_token"] = "not-the-token"
    elif forged == "another session's":
        data["csrf_token"] = console_sessions["admin"]["csrf"]
    response = requests.post(f"{stack.base_url}/console/policies/new", data=data, timeout=30, allow_redirects=False,
                             cookies={SESSION_COOKIE: officer["cookie"]})
    assert response.status_code == 403, response.text
    listed = requests.get(f"{stack.base_url}/api/v1/staff/policies", params={"page_size": 100}, timeout=30,
                          headers=admin_headers(stack, stack_env)).json()["items"]
    assert title not in {policy["title"] for policy in listed}
    genuine = requests.post(f"{stack.base_url}/console/policies/new", data={**data, "csrf_token": officer["csrf"]},
                            timeout=30, allow_redirects=False, cookies={SESSION_COOKIE: officer["cookie"]})
    assert genuine.status_code == 303, genuine.text


def test_sign_in_without_the_login_form_token_is_refused(stack, stack_env):
    username, password = create_staff(stack, admin_headers(stack, stack_env), ["editor"])
    response = requests.post(f"{stack.base_url}/console/login", data={"username": username, "password": password},
                             allow_redirects=False, timeout=30, cookies={LOGIN_CSRF_COOKIE: "abc"})
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies


def test_the_session_cookie_is_http_only_same_site_and_scoped_to_the_console(stack, stack_env):
    username, password = create_staff(stack, admin_headers(stack, stack_env), ["moderator"])
    session = requests.Session()
    token = _HIDDEN_CSRF.search(session.get(f"{stack.base_url}/console/login", timeout=30).text).group(1)
    response = session.post(f"{stack.base_url}/console/login", allow_redirects=False, timeout=30,
                            data={"username": username, "password": password, "csrf_token": token})
    header = next(value for value in response.raw.headers.getlist("Set-Cookie") if value.startswith(SESSION_COOKIE))
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert {"httponly", "samesite", "path"} <= attributes
    assert "SameSite=Lax" in header and "Path=/console" in header
    assert "secure" not in attributes  # the e2e stack runs without TLS (GATEWAY.secure_cookies false)


def test_signing_out_clears_the_session_cookie(stack, stack_env):
    session = sign_in(stack, *create_staff(stack, admin_headers(stack, stack_env), ["editor"]))
    token = csrf_of(session, stack)
    response = session.post(f"{stack.base_url}/console/logout", data={"csrf_token": token}, allow_redirects=False,
                            timeout=30)
    assert response.status_code == 303
    assert not session.cookies.get(SESSION_COOKIE, path="/console")
    assert session.get(f"{stack.base_url}/console/feeds", allow_redirects=False, timeout=30).status_code == 303


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(stack, stack_env):
    username, password = create_staff(stack, admin_headers(stack, stack_env), ["editor"])
    session = requests.Session()

    def attempt(secret):
        token = _HIDDEN_CSRF.search(session.get(f"{stack.base_url}/console/login?lang=en", timeout=30).text).group(1)
        return session.post(f"{stack.base_url}/console/login?lang=en", allow_redirects=False, timeout=30,
                            data={"username": username, "password": secret, "csrf_token": token})

    for _ in range(5):
        assert attempt("wrong-password").status_code == 401
    locked = attempt(password)
    assert locked.status_code == 429
    assert "locked" in locked.text
