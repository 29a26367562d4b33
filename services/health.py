"""Health checks each service answers over RPC; the gateway aggregates them at /healthz."""
from __future__ import annotations

from sqlalchemy import text


def database_ok(unit_of_work) -> str:
    try:
        with unit_of_work() as uow:
            uow.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # noqa: BLE001 - health reports any failure by its type, never crashes
        return f"down: {type(exc).__name__}"
