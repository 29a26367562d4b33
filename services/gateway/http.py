"""JSON routes for the gateway: nameko's @http with errors rendered as JSON through the error table."""
from __future__ import annotations

import json
from functools import partial

from eventlet.event import Event
from nameko.web.handlers import HttpRequestHandler
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.wrappers import Response

from .errors import ApiError, describe

DEFAULT_MAX_BODY = 64 * 1024
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin"}


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, default=str)
    response = Response(body, status=status, mimetype="application/json")
    for key, value in {**SECURITY_HEADERS, **(headers or {})}.items():
        response.headers[key] = value
    return response


class Route(HttpRequestHandler):
    """An @http entrypoint whose failures become JSON error responses (4xx with field messages, never a bare 500).

    Subclasses change the body limit (`body_limit`) or how an error is answered (`error_response`), nothing else.
    """

    def body_limit(self) -> int:
        return int(self.container.config.get("GATEWAY", {}).get("max_body_bytes", DEFAULT_MAX_BODY))

    def handle_request(self, request):
        # nameko's own handle_request, with the request kept in scope so errors speak the reader's language
        request.shallow = False
        request.max_content_length = self.body_limit()
        try:
            context_data = self.server.context_data_from_headers(request)
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(
                self, args, kwargs, context_data=context_data, handle_result=partial(self.handle_result, event)
            )
            return self.response_from_result(event.wait())
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error response
            return self.error_response(exc, request)

    def error_response(self, exc, request):
        status, body, headers = describe(exc, request_language(request))
        return json_response(body, status=status, headers=headers)


route = Route.decorator


def read_json(request) -> dict:
    """The request body as a JSON object, or a 400/413 that says what is wrong."""
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge as exc:
        raise ApiError(413, "payload_too_large", "The request body is too large.") from exc
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return data


def query_params(request) -> dict:
    """Query string as a dict; repeated keys keep all values as a list."""
    params = {}
    for key in request.args:
        values = request.args.getlist(key)
        params[key] = values if len(values) > 1 else values[0]
    return params


def request_language(request) -> str:
    explicit = request.args.get("lang")
    if explicit in ("zh-CN", "zh", "en"):
        return "en" if explicit == "en" else "zh-CN"
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return "en" if best == "en" else "zh-CN"


__all__ = ["ApiError", "BadRequest", "Route", "json_response", "query_params", "read_json", "request_language", "route"]
