"""Staff routes: authentication and everything behind a role."""
from __future__ import annotations

from services.gateway.base import GatewayBase


class StaffRoutes(GatewayBase):
    pass
