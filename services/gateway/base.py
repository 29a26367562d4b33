"""Dependencies every gateway route mixin shares (declared once on this base class)."""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from services.gateway.auth import Signer
from services.messaging import TimedRpcProxy


class GatewaySettings(DependencyProvider):
    """The GATEWAY section of the configuration plus the credential signer built from its secret."""

    def setup(self):
        self.settings = dict(self.container.config.get("GATEWAY", {}))
        self.signer = Signer(str(self.settings.get("secret_key", "")))
        self.amqp_uri = self.container.config["AMQP_URI"]

    def get_dependency(self, worker_ctx):
        return self


class GatewayBase:
    settings = GatewaySettings()
    consultation = TimedRpcProxy("consultation")
    newsfeed = TimedRpcProxy("newsfeed")
    search_service = TimedRpcProxy("search")
