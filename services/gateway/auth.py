"""Staff authentication in the gateway: signed, expiring credentials that carry the actor and roles.

The API takes `Authorization: Bearer <token>`; the console uses the same payload in an HttpOnly session cookie.
Every staff route names the roles it allows; the consultation service checks roles again (defence in depth).
"""
from __future__ import annotations

import hmac
import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .errors import ApiError

ROLES = ("admin", "policy_officer", "editor", "moderator")
TOKEN_MAX_AGE_S = 12 * 3600
SESSION_COOKIE = "tb_session"


class Signer:
    def __init__(self, secret_key: str):
        self._tokens = URLSafeTimedSerializer(secret_key, salt="tb-api-token")
        self._sessions = URLSafeTimedSerializer(secret_key, salt="tb-console-session")

    def issue_token(self, actor: dict) -> str:
        return self._tokens.dumps(_actor_claims(actor))

    def issue_session(self, actor: dict) -> str:
        return self._sessions.dumps({**_actor_claims(actor), "csrf": secrets.token_urlsafe(24)})

    def read_token(self, token: str) -> dict | None:
        return _loads(self._tokens, token)

    def read_session(self, cookie: str) -> dict | None:
        return _loads(self._sessions, cookie)


def _actor_claims(actor: dict) -> dict:
    return {"user_id": actor["user_id"], "username": actor["username"], "roles": sorted(actor["roles"])}


def _loads(serializer, value):
    if not value:
        return None
    try:
        return serializer.loads(value, max_age=TOKEN_MAX_AGE_S)
    except (BadSignature, SignatureExpired):
        return None


def actor_from_request(request, signer: Signer) -> dict | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return signer.read_token(header[len("Bearer "):].strip())
    return signer.read_session(request.cookies.get(SESSION_COOKIE, ""))


def require_roles(request, signer: Signer, *allowed: str) -> dict:
    """The authenticated actor, if they hold one of `allowed` (admin always may); else 401 or 403."""
    actor = actor_from_request(request, signer)
    if actor is None:
        raise ApiError(401, "unauthenticated", "Sign in first.", headers={"WWW-Authenticate": "Bearer"})
    roles = set(actor.get("roles", ()))
    if "admin" in roles or roles.intersection(allowed):
        return {k: actor[k] for k in ("user_id", "username", "roles")}
    raise ApiError(403, "forbidden", "Your role does not allow this.")


def csrf_ok(session: dict | None, submitted: str | None) -> bool:
    if not session or not submitted:
        return False
    return hmac.compare_digest(str(session.get("csrf", "")), str(submitted))
