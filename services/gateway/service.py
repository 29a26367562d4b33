"""The gateway: public JSON API under /api/v1, the embeddable widget, the staff console and /healthz.

It owns nothing persistent; every request becomes RPC calls (with timeouts) to the owning services.
"""
from __future__ import annotations

from services.gateway.errors import register_remote_exceptions
from services.gateway.openapi import OpenApiRoutes
from services.gateway.routes_api import ApiRoutes
from services.gateway.routes_console import ConsoleRoutes
from services.gateway.routes_public import PublicRoutes
from services.gateway.routes_widget import WidgetRoutes

register_remote_exceptions()


class GatewayService(PublicRoutes, ApiRoutes, OpenApiRoutes, ConsoleRoutes, WidgetRoutes):
    name = "gateway"
