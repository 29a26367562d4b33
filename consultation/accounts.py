"""Staff accounts, roles, the audit log and site keys.

Passwords are hashed with argon2 (argon2-cffi). Every staff handler writes an audit entry: who did what to which
object, when. Audit details never hold commenters' personal data.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.kernel.db import utcnow

from . import commands as c
from .exceptions import Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from .model import AuditEntry, SiteKey, User

ADMIN = "admin"
POLICY_OFFICER = "policy_officer"
EDITOR = "editor"
MODERATOR = "moderator"
ROLES = (ADMIN, POLICY_OFFICER, EDITOR, MODERATOR)

MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

_USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{3,80}$")
_CSS_VARIABLE = re.compile(r"^--[A-Za-z0-9\-_]{1,60}$")
_CSS_VALUE_FORBIDDEN = re.compile(r"[;{}<>\\]|url\(|expression\(|@import", re.IGNORECASE)

_hasher = PasswordHasher()
_dummy_hash: str | None = None


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Replace the argon2 parameters (the service may tune them from config; tests use cheap ones)."""
    global _hasher, _dummy_hash
    _hasher, _dummy_hash = hasher, None


def _dummy() -> str:
    # Verifying against a throwaway hash when the user does not exist keeps response time from revealing usernames.
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


@dataclass(frozen=True)
class Actor:
    """The authenticated staff member a handler acts for."""

    user_id: int
    username: str
    roles: tuple[str, ...] = ()

    def has_role(self, *roles: str) -> bool:
        return ADMIN in self.roles or any(role in self.roles for role in roles)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Actor:
        return cls(int(data["user_id"]), str(data["username"]), tuple(data.get("roles") or ()))


def require_role(actor: Actor | None, *roles: str) -> Actor:
    """Admins may do everything; others need one of `roles`."""
    if actor is None:
        raise Unauthenticated("login required")
    if not actor.has_role(*roles):
        raise Forbidden(f"{actor.username} needs one of the roles {', '.join(roles) or ADMIN}")
    return actor


def record_audit(
    session: Session,
    actor: Actor | None,
    action: str,
    object_type: str,
    object_id: Any,
    at: dt.datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            at=at,
            actor_user_id=actor.user_id if actor else None,
            actor_username=actor.username if actor else None,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            detail=detail or {},
        )
    )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_errors(password: str) -> dict[str, str]:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        return {"password": "password.too_short"}
    if len(password) > MAX_PASSWORD_LENGTH:
        return {"password": "password.too_long"}
    return {}


def _role_errors(roles: Iterable[str]) -> dict[str, str]:
    roles = tuple(roles)
    if not roles:
        return {"roles": "roles.required"}
    if any(role not in ROLES for role in roles):
        return {"roles": "roles.unknown"}
    return {}


def user_dict(user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "roles": list(user.roles or []),
        "disabled": user.disabled,
        "locked_until": user.locked_until,
        "last_login_at": user.last_login_at,
        "created_at": user.created_at,
    }


def _get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if isinstance(user_id, int) and 0 < user_id <= 2_147_483_647 else None
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


# --- handlers ----------------------------------------------------------------------------------------------------


def authenticate(uow, username: str, password: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Check a staff login; returns the user dict (user_id, username, roles, …) or raises Unauthenticated.

    Five failures in a row lock the account for 15 minutes; while locked even the right password is refused.
    Failed attempts are committed although the call raises, so the count survives.
    """
    now = now or utcnow()
    with uow:
        user = uow.session.scalar(select(User).where(User.username == (username or "")))
        if user is None:
            _verify_quietly(_dummy(), password)
            raise Unauthenticated("invalid username or password")
        if user.locked_until is not None and user.locked_until > now:
            retry = int((user.locked_until - now).total_seconds()) + 1
            raise Unauthenticated("account temporarily locked after too many failed logins", retry)
        if user.disabled or not _verify_quietly(user.password_hash, password):
            if not user.disabled:
                user.failed_logins += 1
                if user.failed_logins >= MAX_FAILED_LOGINS:
                    user.failed_logins = 0
                    user.locked_until = now + LOCKOUT
                    record_audit(uow.session, None, "user.locked", "user", user.id, now)
                uow.commit()
            raise Unauthenticated("invalid username or password")
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        record_audit(uow.session, Actor(user.id, user.username, tuple(user.roles)), "user.login", "user", user.id, now)
        result = user_dict(user)
        uow.commit()
        return result


def _verify_quietly(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def create_user(uow, command: c.CreateUser, *, actor: Actor, clock: Callable[[], dt.datetime] = utcnow) -> dict:
    require_role(actor, ADMIN)
    errors = {**_password_errors(command.password), **_role_errors(command.roles)}
    if not _USERNAME.match(command.username or ""):
        errors["username"] = "username.invalid"
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        if uow.session.scalar(select(User.id).where(User.username == command.username)) is not None:
            raise Conflict(f"username {command.username} is taken")
        user = User(
            username=command.username,
            display_name=command.display_name or command.username,
            password_hash=hash_password(command.password),
            roles=sorted(set(command.roles)),
            created_at=now,
        )
        uow.session.add(user)
        try:
            uow.session.flush()
        except IntegrityError as exc:
            raise Conflict(f"username {command.username} is taken") from exc
        record_audit(uow.session, actor, "user.create", "user", user.id, now, {"roles": user.roles})
        result = user_dict(user)
        uow.commit()
        return result


def set_user_disabled(uow, command: c.SetUserDisabled, *, actor: Actor, clock=utcnow) -> dict:
    require_role(actor, ADMIN)
    if command.user_id == actor.user_id and command.disabled:
        raise Conflict("you cannot disable your own account")
    now = clock()
    with uow:
        user = _get_user(uow.session, command.user_id)
        user.disabled = command.disabled
        record_audit(uow.session, actor, "user.disable" if command.disabled else "user.enable", "user", user.id, now)
        result = user_dict(user)
        uow.commit()
        return result


def reset_password(uow, command: c.ResetPassword, *, actor: Actor, clock=utcnow) -> dict:
    """Admins reset anyone's password; every user may reset their own."""
    if actor is None:
        raise Unauthenticated("login required")
    if command.user_id != actor.user_id:
        require_role(actor, ADMIN)
    errors = _password_errors(command.new_password)
    if errors:
        raise ValidationFailed({"new_password": errors["password"]})
    now = clock()
    with uow:
        user = _get_user(uow.session, command.user_id)
        user.password_hash = hash_password(command.new_password)
        user.failed_logins = 0
        user.locked_until = None
        record_audit(uow.session, actor, "user.reset_password", "user", user.id, now)
        result = user_dict(user)
        uow.commit()
        return result


def set_user_roles(uow, command: c.SetUserRoles, *, actor: Actor, clock=utcnow) -> dict:
    require_role(actor, ADMIN)
    errors = _role_errors(command.roles)
    if errors:
        raise ValidationFailed(errors)
    if command.user_id == actor.user_id and ADMIN not in command.roles:
        raise Conflict("you cannot remove your own admin role")
    now = clock()
    with uow:
        user = _get_user(uow.session, command.user_id)
        before = list(user.roles or [])
        user.roles = sorted(set(command.roles))
        record_audit(uow.session, actor, "user.set_roles", "user", user.id, now, {"from": before, "to": user.roles})
        result = user_dict(user)
        uow.commit()
        return result


def list_users(uow, command: c.ListUsers = c.ListUsers(), *, actor: Actor, clock=utcnow) -> list[dict]:
    require_role(actor, ADMIN)
    with uow:
        query = select(User).order_by(User.username)
        if not command.include_disabled:
            query = query.where(User.disabled.is_(False))
        return [user_dict(user) for user in uow.session.scalars(query)]


def bootstrap_admin(uow, username: str, password: str, *, clock=utcnow) -> dict:
    """Create the first admin (the CLI's `balloon users create-admin`); refuses once any user exists."""
    errors = _password_errors(password)
    if not _USERNAME.match(username or ""):
        errors["username"] = "username.invalid"
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        if uow.session.scalar(select(User.id).limit(1)) is not None:
            raise Conflict("users exist already; ask an admin to create your account")
        user = User(username=username, display_name=username, password_hash=hash_password(password), roles=[ADMIN],
                    created_at=now)
        uow.session.add(user)
        uow.session.flush()
        record_audit(uow.session, None, "user.bootstrap_admin", "user", user.id, now)
        result = user_dict(user)
        uow.commit()
        return result


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at,
        "actor_user_id": entry.actor_user_id,
        "actor_username": entry.actor_username,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "detail": entry.detail or {},
    }


def list_audit_log(uow, command: c.ListAuditLog = c.ListAuditLog(), *, actor: Actor, clock=utcnow) -> dict:
    """Newest first, keyset-paginated by id (`before_id`)."""
    require_role(actor, ADMIN)
    limit = max(1, min(command.limit, 500))
    with uow:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
        if command.object_type:
            query = query.where(AuditEntry.object_type == command.object_type)
        if command.object_id:
            query = query.where(AuditEntry.object_id == str(command.object_id))
        if command.before_id:
            query = query.where(AuditEntry.id < command.before_id)
        rows = list(uow.session.scalars(query))
        items = [audit_dict(row) for row in rows[:limit]]
        return {"items": items, "next_before_id": items[-1]["id"] if len(rows) > limit else None}


# --- site keys ---------------------------------------------------------------------------------------------------


def _origin_errors(origins: Iterable[str]) -> str | None:
    for origin in origins:
        parts = urlsplit(origin or "")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                or parts.query or parts.fragment or parts.username:
            return "site_key.origin_invalid"
    return None


def _theme_errors(theme: dict[str, Any]) -> str | None:
    if not isinstance(theme, dict) or len(theme) > 50:
        return "site_key.theme_invalid"
    for name, value in theme.items():
        if not isinstance(name, str) or not _CSS_VARIABLE.match(name):
            return "site_key.theme_invalid"
        if not isinstance(value, str) or len(value) > 200 or _CSS_VALUE_FORBIDDEN.search(value):
            return "site_key.theme_invalid"
    return None


def normalise_origin(origin: str) -> str:
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}".lower()


def site_key_dict(site_key: SiteKey) -> dict[str, Any]:
    return {
        "key": site_key.key,
        "name": site_key.name,
        "allowed_origins": list(site_key.allowed_origins or []),
        "enabled": site_key.enabled,
        "theme": dict(site_key.theme or {}),
        "created_at": site_key.created_at,
        "updated_at": site_key.updated_at,
    }


def _site_key_field_errors(name, origins, theme) -> dict[str, str]:
    errors = {}
    if name is not None and not (1 <= len(name.strip()) <= 200):
        errors["name"] = "field.length"
    if origins is not None and (problem := _origin_errors(origins)):
        errors["allowed_origins"] = problem
    if theme is not None and (problem := _theme_errors(theme)):
        errors["theme"] = problem
    return errors


def create_site_key(uow, command: c.CreateSiteKey, *, actor: Actor, clock=utcnow) -> dict:
    require_role(actor, ADMIN)
    errors = _site_key_field_errors(command.name or "", command.allowed_origins, command.theme)
    if command.key is not None and not re.match(r"^[A-Za-z0-9_\-]{4,64}$", command.key):
        errors["key"] = "site_key.key_invalid"
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        key = command.key or secrets.token_urlsafe(12)
        if uow.session.scalar(select(SiteKey.id).where(SiteKey.key == key)) is not None:
            raise Conflict(f"site key {key} exists")
        site_key = SiteKey(
            key=key,
            name=command.name.strip(),
            allowed_origins=[normalise_origin(o) for o in command.allowed_origins],
            theme=dict(command.theme),
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(site_key)
        uow.session.flush()
        record_audit(uow.session, actor, "site_key.create", "site_key", key, now)
        result = site_key_dict(site_key)
        uow.commit()
        return result


def update_site_key(uow, command: c.UpdateSiteKey, *, actor: Actor, clock=utcnow) -> dict:
    require_role(actor, ADMIN)
    errors = _site_key_field_errors(command.name, command.allowed_origins, command.theme)
    if errors:
        raise ValidationFailed(errors)
    now = clock()
    with uow:
        site_key = uow.session.scalar(select(SiteKey).where(SiteKey.key == command.key))
        if site_key is None:
            raise NotFound(f"site key {command.key} not found")
        changed = []
        if command.name is not None:
            site_key.name, changed = command.name.strip(), [*changed, "name"]
        if command.allowed_origins is not None:
            site_key.allowed_origins = [normalise_origin(o) for o in command.allowed_origins]
            changed.append("allowed_origins")
        if command.enabled is not None:
            site_key.enabled, changed = command.enabled, [*changed, "enabled"]
        if command.theme is not None:
            site_key.theme, changed = dict(command.theme), [*changed, "theme"]
        site_key.updated_at = now
        record_audit(uow.session, actor, "site_key.update", "site_key", site_key.key, now, {"changed": changed})
        result = site_key_dict(site_key)
        uow.commit()
        return result


def list_site_keys(uow, *, actor: Actor, clock=utcnow) -> list[dict]:
    require_role(actor, ADMIN)
    with uow:
        return [site_key_dict(k) for k in uow.session.scalars(select(SiteKey).order_by(SiteKey.name, SiteKey.id))]


def get_site_key(uow, command: c.GetSiteKey, *, clock=utcnow) -> dict:
    """Public: the widget resolves its key (origins for CSP frame-ancestors, theme). Disabled keys are NotFound."""
    with uow:
        site_key = uow.session.scalar(select(SiteKey).where(SiteKey.key == command.key))
        if site_key is None or not site_key.enabled:
            raise NotFound(f"site key {command.key} not found")
        return site_key_dict(site_key)
