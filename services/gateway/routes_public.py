"""Public, read-only routes (plus comment submission and voting, which arrive with the consultation API)."""
from __future__ import annotations

import pathlib

import eventlet
from kombu import Connection
from werkzeug.exceptions import NotFound
from werkzeug.utils import safe_join
from werkzeug.wrappers import Response

from services.config import ROOT
from services.gateway.base import GatewayBase
from services.gateway.http import json_response, query_params, route

DEMO_DIR = ROOT / "deploy" / "demo"
DEMO_TYPES = {".xml": "application/xml", ".rss": "application/rss+xml", ".atom": "application/atom+xml",
              ".json": "application/feed+json", ".html": "text/html; charset=utf-8"}

HEALTH_RPC_TIMEOUT = 3.0
BACKING_SERVICES = ("consultation", "newsfeed", "search")


class PublicRoutes(GatewayBase):
    @route("GET", "/healthz")
    def healthz(self, request):
        report = {"broker": self._broker_status()}
        for name in BACKING_SERVICES:
            report[name] = self._service_status(name)
        failing = [part for part, status in _flatten(report) if status != "ok"]
        body = {"status": "ok" if not failing else "degraded", "checks": report, "failing": failing}
        return json_response(body, status=200 if not failing else 503)

    def _broker_status(self) -> str:
        try:
            with Connection(self.settings.amqp_uri, connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1)
            return "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return f"down: {type(exc).__name__}"

    def _service_status(self, name: str):
        proxy = {"consultation": self.consultation, "newsfeed": self.newsfeed, "search": self.search_service}[name]
        try:
            with eventlet.Timeout(HEALTH_RPC_TIMEOUT):
                checks = proxy.health()
            return {"service": "ok", **checks}
        except eventlet.Timeout:
            return {"service": "down: no answer within 3s"}
        except Exception as exc:  # noqa: BLE001
            return {"service": f"down: {type(exc).__name__}"}

    @route("GET", "/demo/feeds/<path:name>")
    def demo_feed(self, request, name):
        """Demo news feeds, served from files in the repository so `make run` has coverage to ingest."""
        return _demo_file("feeds", name)

    @route("GET", "/api/v1/search")
    def search(self, request):
        return json_response(self.search_service.search(query_params(request)))


def _demo_file(folder: str, name: str) -> Response:
    path = safe_join(str(DEMO_DIR / folder), name)
    if path is None or not pathlib.Path(path).is_file():
        raise NotFound()
    suffix = pathlib.Path(path).suffix
    return Response(pathlib.Path(path).read_bytes(), mimetype=None,
                    headers={"Content-Type": DEMO_TYPES.get(suffix, "application/octet-stream")})


def _flatten(report: dict, prefix: str = ""):
    for key, value in report.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, prefix=f"{name}.")
        else:
            yield name, value
