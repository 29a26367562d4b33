"""Who may call what: every staff route with every role and with no credentials, and the public API's write surface.

An allowed role may still get 400/404 for the dummy payload and ids used here; any status but 401/403 proves the
gate opened. No route may answer 500 to a dummy request.
"""
import re
import uuid

import pytest
import requests

from services.demo import DEMO_PASSWORD, DEMO_USER, ensure_demo_user
from services.gateway.auth import ROLES
from services.gateway.openapi import gateway_entrypoints
from services.gateway.routes_api import STAFF_ROUTES
from tests.e2e.conftest import consultation_unit_of_work

pytestmark = pytest.mark.rabbit

UNKNOWN_ID = 987654
PUBLIC_WRITES = {
    ("POST", "/api/v1/policies/<int:policy_id>/comments"),
    ("POST", "/api/v1/policies/<int:policy_id>/votes"),
    ("POST", "/api/v1/comments/<int:comment_id>/endorsements"),
    ("POST", "/api/v1/auth/token"),  # signing in needs no credentials, by definition
}
_VARIABLE = re.compile(r"<(?:(\w+):)?(\w+)>")


def concrete(path: str) -> str:
    """A URL for a werkzeug rule, with ids nobody has."""
    return _VARIABLE.sub(lambda m: str(UNKNOWN_ID) if m.group(1) == "int" else "no-such-thing", path)


def token_for(stack, username, password) -> str:
    response = requests.post(f"{stack.base_url}/api/v1/auth/token", json={"username": username, "password": password},
                             timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["token"]


@pytest.fixture(scope="module")
def tokens(stack, stack_env):
    """A bearer token per role: one user per role, created as the admin through the staff users API."""
    ensure_demo_user(consultation_unit_of_work(stack_env))
    admin = {"Authorization": f"Bearer {token_for(stack, DEMO_USER, DEMO_PASSWORD)}"}
    result = {}
    for role in ROLES:
        username, password = f"{role.replace('_', '-')}-{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
        created = requests.post(f"{stack.base_url}/api/v1/staff/users", headers=admin, timeout=30,
                                json={"username": username, "password": password, "roles": [role]})
        assert created.status_code == 201, created.text
        assert created.json()["roles"] == [role]
        result[role] = token_for(stack, username, password)
    return result


def request(stack, method, path, token=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return requests.request(method, f"{stack.base_url}{concrete(path)}", headers=headers, timeout=30,
                            **body, **kwargs)


@pytest.mark.parametrize("api", STAFF_ROUTES, ids=lambda api: f"{api.method} {api.path}")
def test_staff_route_admits_exactly_its_roles(stack, tokens, api):
    anonymous = request(stack, api.method, api.path)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers.get("WWW-Authenticate", "").startswith("Bearer")
    forged = request(stack, api.method, api.path, token="not-a-real-token")
    assert forged.status_code == 401
    for role in ROLES:
        response = request(stack, api.method, api.path, token=tokens[role])
        allowed = role == "admin" or role in api.roles
        if allowed:
            assert response.status_code not in (401, 403), f"{role}: {response.status_code} {response.text}"
            assert response.status_code < 500, f"{role}: {response.status_code} {response.text}"
        else:
            assert response.status_code == 403, f"{role}: {response.status_code} {response.text}"
            assert response.json()["error"]["code"] == "forbidden"


def test_every_role_is_allowed_somewhere_and_refused_somewhere(tokens):
    for role in ROLES:
        if role == "admin":
            continue
        assert any(role in api.roles for api in STAFF_ROUTES), role
        assert any(role not in api.roles for api in STAFF_ROUTES), role


def _public_api_entrypoints():
    from services.gateway.service import GatewayService

    staff_rules = {(api.method, api.path) for api in STAFF_ROUTES}
    return sorted({(method, url) for method, url, _doc in gateway_entrypoints(GatewayService)
                   if url.startswith("/api/v1") and (method, url) not in staff_rules})


@pytest.mark.parametrize("method, path", _public_api_entrypoints(), ids=lambda value: str(value))
def test_without_credentials_only_reads_comments_votes_and_endorsements_are_accepted(stack, method, path):
    response = request(stack, method, path)
    if method == "GET" or (method, path) in PUBLIC_WRITES:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 401, f"{method} {path} accepts anonymous writes: {response.status_code}"
    assert response.status_code < 500, response.text
