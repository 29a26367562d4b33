"""Domain exceptions of the consultation service.

nameko sends a remote exception back by type name and `args`, and pickling rebuilds it as `cls(*args)`, so every
exception keeps its data as plain, JSON-friendly positional args and exposes them as properties.
"""
from __future__ import annotations

from typing import Any


class ConsultationError(Exception):
    """Base of every domain error; `message` is a human readable English sentence."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__

    def __str__(self) -> str:
        return self.message


class NotFound(ConsultationError):
    def __init__(self, message: str = "not found"):
        super().__init__(message)


class ValidationFailed(ConsultationError):
    """`errors` maps a field name to a message id (see consultation.i18n) or a nested dict/list of them."""

    def __init__(self, errors: dict[str, Any], message: str = "validation failed"):
        super().__init__(errors, message)

    @property
    def errors(self) -> dict[str, Any]:
        return self.args[0]

    @property
    def message(self) -> str:
        return str(self.args[1])


class Conflict(ConsultationError):
    def __init__(self, message: str = "conflict"):
        super().__init__(message)


class WindowClosed(ConsultationError):
    """The consultation does not accept comments or votes now.

    `opened_at` / `closed_at` are ISO 8601 strings in the consultation's time zone (None when not applicable),
    `time_zone` its IANA name and `reason` one of not_open_yet, opens_later, closed, withdrawn; together they let the
    gateway word the message in the reader's language (consultation.i18n.window_closed_message).
    """

    def __init__(self, message: str, opened_at: str | None = None, closed_at: str | None = None,
                 time_zone: str | None = None, reason: str | None = None):
        super().__init__(message, opened_at, closed_at, time_zone, reason)

    @property
    def opened_at(self) -> str | None:
        return self.args[1]

    @property
    def closed_at(self) -> str | None:
        return self.args[2]

    @property
    def time_zone(self) -> str | None:
        return self.args[3]

    @property
    def reason(self) -> str | None:
        return self.args[4]


class InvalidTransition(ConsultationError):
    def __init__(self, message: str, from_state: str | None = None, action: str | None = None):
        super().__init__(message, from_state, action)

    @property
    def from_state(self) -> str | None:
        return self.args[1]

    @property
    def action(self) -> str | None:
        return self.args[2]


class Forbidden(ConsultationError):
    def __init__(self, message: str = "forbidden"):
        super().__init__(message)


class Unauthenticated(ConsultationError):
    def __init__(self, message: str = "invalid username or password", retry_after_s: int | None = None):
        super().__init__(message, retry_after_s)

    @property
    def retry_after_s(self) -> int | None:
        return self.args[1]


class RateLimited(ConsultationError):
    def __init__(self, retry_after_s: int, message: str = "too many submissions, try again later"):
        super().__init__(int(retry_after_s), message)

    @property
    def retry_after_s(self) -> int:
        return self.args[0]

    @property
    def message(self) -> str:
        return str(self.args[1])


class PayloadTooLarge(ConsultationError):
    def __init__(self, message: str = "payload too large", limit: int | None = None):
        super().__init__(message, limit)

    @property
    def limit(self) -> int | None:
        return self.args[1]


DOMAIN_EXCEPTIONS: tuple[type[ConsultationError], ...] = (
    NotFound, ValidationFailed, Conflict, WindowClosed, InvalidTransition, Forbidden, Unauthenticated, RateLimited,
    PayloadTooLarge,
)
