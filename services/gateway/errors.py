"""The one table mapping exceptions to HTTP responses (DESIGN.md convention 5).

Domain exceptions raised in another service travel back over RPC by module path; `register_remote_exceptions`
teaches nameko to rebuild them as their real types, so this table sees the same classes everywhere.
"""
from __future__ import annotations

import importlib
import logging

from marshmallow import ValidationError
from nameko import exceptions as nameko_exceptions
from werkzeug.exceptions import HTTPException

from consultation.i18n import translate, translate_errors, window_closed_message

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the gateway itself raises: status, machine code, message and optional per-field messages."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None, headers: dict | None = None):
        super().__init__(status, code, message, fields)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}


# (module path of the exception class, status, code). Modules that do not exist yet are skipped.
ERROR_TABLE: list[tuple[str, int, str]] = [
    ("consultation.exceptions.ValidationFailed", 400, "validation_failed"),
    ("consultation.exceptions.Unauthenticated", 401, "unauthenticated"),
    ("consultation.exceptions.Forbidden", 403, "forbidden"),
    ("consultation.exceptions.NotFound", 404, "not_found"),
    ("consultation.exceptions.WindowClosed", 409, "window_closed"),
    ("consultation.exceptions.InvalidTransition", 409, "invalid_transition"),
    ("consultation.exceptions.Conflict", 409, "conflict"),
    ("consultation.exceptions.PayloadTooLarge", 413, "payload_too_large"),
    ("consultation.exceptions.RateLimited", 429, "rate_limited"),
    ("newsfeed.exceptions.InvalidFeed", 400, "invalid_feed"),
    ("newsfeed.exceptions.NotFound", 404, "not_found"),
    ("newsfeed.exceptions.FeedAlreadyExists", 409, "conflict"),
    ("search.queries.InvalidSearchQuery", 400, "invalid_query"),
    ("services.kernel.db.DatabaseUnavailable", 503, "database_unavailable"),
]


def _resolve(path: str):
    module_name, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return None


def _rebuilder(cls):
    """nameko rebuilds a remote exception as `cls(*exc.args)`; if a class's constructor does not accept its own
    args back, keep the type (so the status is right) and the message rather than turn it into a 500."""

    def rebuild(*args):
        # nameko sends every non-string, non-container argument as text: None arrives as "None"
        args = tuple(None if arg == "None" else arg for arg in args)
        try:
            return cls(*args)
        except Exception:  # noqa: BLE001 - any constructor mismatch
            exc = cls.__new__(cls)
            Exception.__init__(exc, *args)
            return exc

    return rebuild


def register_remote_exceptions():
    for path, _status, _code in ERROR_TABLE:
        cls = _resolve(path)
        if cls is not None:
            nameko_exceptions.registry[path] = _rebuilder(cls)


def _fields_of(exc) -> dict:
    for attribute in ("errors", "fields"):
        value = getattr(exc, attribute, None)
        if isinstance(value, dict):
            return value
    return {}


def describe(exc: BaseException, language: str = "zh-CN") -> tuple[int, dict, dict]:
    """Return (status, JSON body, extra headers) for any exception; field messages in the reader's language."""
    status, body, headers = _describe(exc)
    error = body["error"]
    if error.get("fields"):
        error["fields"] = translate_errors(error["fields"], language)
    if error["code"] == "window_closed":
        error["message"] = window_closed_message(exc, language)  # says when, in the consultation's time zone
    else:
        error["message"] = translate(error["message"], language)
    return status, body, headers


def _describe(exc: BaseException) -> tuple[int, dict, dict]:
    if isinstance(exc, ApiError):
        return exc.status, {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}}, exc.headers
    if isinstance(exc, ValidationError):
        return 400, {"error": {"code": "validation_failed", "message": "Invalid input.", "fields": exc.messages}}, {}
    if isinstance(exc, HTTPException):
        return exc.code, {"error": {"code": exc.name.lower().replace(" ", "_"), "message": exc.description}}, {}
    if isinstance(exc, nameko_exceptions.RpcTimeout):
        return 503, {"error": {"code": "service_timeout", "message": "A backing service did not answer in time."}}, {}
    for path, status, code in ERROR_TABLE:
        cls = _resolve(path)
        if cls is not None and isinstance(exc, cls):
            headers = {}
            retry_after = getattr(exc, "retry_after_s", None)
            try:
                headers["Retry-After"] = str(max(1, int(round(float(retry_after)))))
            except (TypeError, ValueError):
                pass  # no (usable) delay given
            message = getattr(exc, "message", None)
            if not isinstance(message, str):
                message = str(exc) or code
            return status, {"error": {"code": code, "message": message, "fields": _fields_of(exc)}}, headers
    if isinstance(exc, nameko_exceptions.RemoteError):
        log.error("unmapped remote error %s", exc.exc_type)
    else:
        log.exception("unhandled error in gateway", exc_info=exc)
    return 500, {"error": {"code": "internal_error", "message": "Something went wrong on our side."}}, {}
