"""The OpenAPI 3 document of the JSON API, generated from the route tables and the marshmallow input schemas.

The route tables in routes_api.py are the single source: every table entry becomes an operation whose request body
(or query parameters, for GET) is its input schema minus the fields the URL already carries. The few hand-written
routes (comment submission, votes, endorsements, token, CSV, search, health) are described in SPECIAL_ROUTES, and
any other /api/v1 entrypoint found on the gateway is still listed, from its docstring, so nothing goes undocumented.
"""
from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass, field

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from services.gateway.base import GatewayBase
from services.gateway.http import json_response, route
from services.gateway.routes_api import PUBLIC_ROUTES, STAFF_ROUTES, ApiRoute, P

OPENAPI_PATH = f"{P}/openapi.json"
OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"
SCHEMA_MODULES = ("consultation.schemas", "newsfeed.schemas")
BEARER = "bearerAuth"
ERROR_RESPONSE = "Error"

_WERKZEUG_VARIABLE = re.compile(r"<(?:(?P<converter>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_CONVERTER_TYPES = {"int": {"type": "integer", "minimum": 1}, "float": {"type": "number"}}

ERROR_STATUSES = {
    400: "Invalid input: `error.fields` maps each bad field to a message in the reader's language",
    401: "No valid credentials (send `Authorization: Bearer <token>`)",
    403: "The signed-in role may not do this",
    404: "Unknown id",
    409: "Closed comment window or invalid state transition",
    413: "Request body too large",
    429: "Too many submissions; see the Retry-After header",
}


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={"description": "Machine-readable error code"})
    message = fields.String(required=True, metadata={"description": "Human-readable message (zh-CN or en)"})
    field_messages = fields.Dict(keys=fields.String(), data_key="fields",
                                 metadata={"description": "Per-field messages for 400 responses"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


@dataclass(frozen=True)
class SpecialRoute:
    """A route written by hand in the gateway (not a table entry), described for the document."""

    method: str
    path: str
    summary: str
    schema: str | None = None
    exclude: tuple[str, ...] = ()  # body fields the gateway sets itself, never the client
    status: int = 200
    staff: bool = False
    errors: tuple[int, ...] = (400, 404)
    query: tuple[dict, ...] = ()
    headers: tuple[dict, ...] = ()
    response_content: dict = field(default_factory=lambda: {"application/json": {"schema": {"type": "object"}}})
    tags: tuple[str, ...] = ("public",)


def _q(name: str, description: str, schema: dict | None = None) -> dict:
    return {"in": "query", "name": name, "required": False, "description": description,
            "schema": schema or {"type": "string"}}


SEARCH_QUERY = (
    _q("q", "Search text (Chinese, English or mixed; \"quoted phrases\" kept together)"),
    _q("doc_type", "policy, clause, comment, explanation or article (repeatable)"),
    _q("department", "Issuing department"),
    _q("topic", "Policy topic"),
    _q("policy_id", "Only documents of this policy"),
    _q("consultation_state", "open, closed, …"),
    _q("outlet", "News outlet"),
    _q("language", "zh or en"),
    _q("date_from", "ISO date, inclusive", {"type": "string", "format": "date"}),
    _q("date_to", "ISO date, inclusive", {"type": "string", "format": "date"}),
    _q("sort", "relevance or newest"),
    _q("page", "Page number from 1", {"type": "integer", "minimum": 1}),
    _q("per_page", "Hits per page", {"type": "integer", "minimum": 1}),
)

IDEMPOTENCY_HEADER = {
    "in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 100},
    "description": "Repeat a submission with the same key to get the first receipt back instead of a duplicate",
}

SPECIAL_ROUTES = [
    SpecialRoute("POST", f"{P}/policies/<int:policy_id>/comments", "Submit a comment (pending until moderated)",
                 schema="SubmitCommentSchema", exclude=("policy_id", "channel", "client_ip", "idempotency_key"),
                 status=201, errors=(400, 404, 409, 413, 429), headers=(IDEMPOTENCY_HEADER,)),
    SpecialRoute("POST", f"{P}/policies/<int:policy_id>/votes",
                 "Vote support / oppose / neutral (one vote per voter token, changeable while open)",
                 schema="CastVoteSchema", exclude=("policy_id",), errors=(400, 404, 409, 413)),
    SpecialRoute("POST", f"{P}/comments/<int:comment_id>/endorsements", "Endorse (support) an approved comment",
                 schema="EndorseCommentSchema", exclude=("comment_id",), errors=(400, 404, 409, 413)),
    SpecialRoute("POST", f"{P}/auth/token", "Exchange a staff username and password for a bearer token",
                 schema="LoginSchema", errors=(400, 401, 413), tags=("auth",)),
    SpecialRoute("GET", f"{P}/policies/<int:policy_id>/report/comments.csv",
                 "All approved comments of a published report as CSV (streamed)", errors=(404,),
                 response_content={"text/csv": {"schema": {"type": "string"}}}),
    SpecialRoute("GET", f"{P}/search", "Search public policies, clauses, comments, explanations and coverage",
                 query=SEARCH_QUERY, errors=(400,)),
    SpecialRoute("GET", "/healthz", "Health of the broker and every backing service (503 when degraded)",
                 errors=(), tags=("operations",)),
    SpecialRoute("GET", OPENAPI_PATH, "This document", errors=(), tags=("operations",)),
]


def openapi_path(werkzeug_path: str) -> str:
    """`/policies/<int:policy_id>` → `/policies/{policy_id}`."""
    return _WERKZEUG_VARIABLE.sub(lambda match: "{" + match.group("name") + "}", werkzeug_path)


def path_parameters(werkzeug_path: str) -> list[dict]:
    return [
        {"in": "path", "name": match.group("name"), "required": True,
         "schema": dict(_CONVERTER_TYPES.get(match.group("converter") or "", {"type": "string"}))}
        for match in _WERKZEUG_VARIABLE.finditer(werkzeug_path)
    ]


def _url_names(werkzeug_path: str) -> tuple[str, ...]:
    return tuple(match.group("name") for match in _WERKZEUG_VARIABLE.finditer(werkzeug_path))


def schema_class(name: str) -> type[Schema]:
    for module_name in SCHEMA_MODULES:
        cls = getattr(importlib.import_module(module_name), name, None)
        if isinstance(cls, type) and issubclass(cls, Schema):
            return cls
    raise LookupError(f"input schema {name!r} is in none of {SCHEMA_MODULES}")


class _Builder:
    def __init__(self):
        self.spec = APISpec(
            title="Trial Balloon API", version=API_VERSION, openapi_version=OPENAPI_VERSION,
            plugins=[MarshmallowPlugin()],
            info={"description": "Public consultation on draft policies: drafts and clauses, comments, votes, "
                                 "explanations, coverage links and feedback reports. Messages follow "
                                 "Accept-Language or ?lang= (zh-CN default, en)."},
        )
        self.spec.components.security_scheme(BEARER, {"type": "http", "scheme": "bearer",
                                                      "description": "Token from POST /api/v1/auth/token"})
        self.spec.components.schema("Error", schema=ErrorSchema)
        self.spec.components.response(ERROR_RESPONSE, {
            "description": "An error with a code, a message and per-field messages",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            "headers": {"Retry-After": {"description": "Seconds to wait (429 only)", "schema": {"type": "integer"}}},
        })
        self.paths: dict[str, dict[str, dict]] = {}
        self._registered: dict[tuple[str, tuple[str, ...]], str] = {}

    def component(self, name: str, exclude: tuple[str, ...]) -> str | None:
        """Register the input schema without the URL / gateway-set fields; returns its component name."""
        cls = schema_class(name)
        drop = tuple(sorted(set(exclude) & set(cls._declared_fields)))
        if not set(cls._declared_fields) - set(drop):
            return None  # everything it needs is in the URL: no body
        key = (name, drop)
        if key not in self._registered:
            base = name.removesuffix("Schema")
            component = f"{base}Body" if drop else base
            if component in self._registered.values():
                component = f"{component}{len(self._registered)}"
            self.spec.components.schema(component, schema=cls(exclude=drop))
            self._registered[key] = component
        return self._registered[key]

    def query_parameters(self, name: str, exclude: tuple[str, ...]) -> list[dict]:
        cls = schema_class(name)
        drop = tuple(sorted(set(exclude) & set(cls._declared_fields)))
        if not set(cls._declared_fields) - set(drop):
            return []
        return [{"in": "query", "schema": cls(exclude=drop)}]

    def add(self, method: str, werkzeug_path: str, operation: dict):
        self.paths.setdefault(werkzeug_path, {})[method.lower()] = operation

    def responses(self, status: int, errors, content: dict, staff: bool) -> dict:
        responses = {str(status): {"description": "Success", "content": content}}
        for code in sorted(set(errors) | ({401, 403} if staff else set())):
            responses[str(code)] = {"$ref": f"#/components/responses/{ERROR_RESPONSE}"}
        return responses

    def operation(self, method, werkzeug_path, *, summary, schema, exclude, status, staff, roles, errors,
                  extra_parameters=(), content=None, tags=(), operation_id=None) -> dict:
        parameters = path_parameters(werkzeug_path) + list(extra_parameters)
        operation = {"summary": summary, "tags": list(tags), "operationId": operation_id}
        if schema:
            if method in ("GET", "DELETE"):
                parameters += self.query_parameters(schema, exclude)
            else:
                component = self.component(schema, exclude)
                if component:
                    operation["requestBody"] = {"required": True, "content": {"application/json": {
                        "schema": {"$ref": f"#/components/schemas/{component}"}}}}
        elif method in ("POST", "PUT", "PATCH"):
            operation["requestBody"] = {"required": False, "content": {"application/json": {
                "schema": {"type": "object"}}}}
        if parameters:
            operation["parameters"] = parameters
        if staff:
            operation["security"] = [{BEARER: []}]
            operation["x-roles"] = sorted({"admin", *roles})
            operation["description"] = "Roles allowed: " + ", ".join(operation["x-roles"]) + "."
        operation["responses"] = self.responses(
            status, errors, content or {"application/json": {"schema": {"type": "object"}}}, staff)
        return {key: value for key, value in operation.items() if value is not None}

    def table_route(self, api: ApiRoute):
        staff = api.roles is not None
        errors = {400, 404} | ({409} if api.method != "GET" else set()) | ({413} if api.method != "GET" else set())
        url_fields = tuple(api.url_args.get(name, name) for name in _url_names(api.path))
        self.add(api.method, api.path, self.operation(
            api.method, api.path, summary=api.summary or api.rpc.replace("_", " ").capitalize(), schema=api.schema,
            exclude=url_fields, status=api.status, staff=staff, roles=api.roles or (), errors=errors,
            tags=("staff" if staff else "public",),
            operation_id=f"{'staff' if staff else 'public'}_{api.method.lower()}_{api.rpc}",
        ))

    def special_route(self, special: SpecialRoute):
        self.add(special.method, special.path, self.operation(
            special.method, special.path, summary=special.summary, schema=special.schema,
            exclude=special.exclude + _url_names(special.path), status=special.status, staff=special.staff,
            roles=(), errors=special.errors, extra_parameters=special.query + special.headers,
            content=special.response_content, tags=special.tags,
        ))

    def other_entrypoint(self, method: str, werkzeug_path: str, doc: str):
        self.add(method, werkzeug_path, self.operation(
            method, werkzeug_path, summary=(doc or "").strip().split("\n")[0] or werkzeug_path, schema=None,
            exclude=(), status=200, staff=False, roles=(), errors=(400, 404), tags=("public",)))

    def document(self) -> dict:
        for werkzeug_path in sorted(self.paths):
            self.spec.path(path=openapi_path(werkzeug_path), operations=self.paths[werkzeug_path])
        return self.spec.to_dict()


def gateway_entrypoints(service_class) -> list[tuple[str, str, str]]:
    """(method, werkzeug path, docstring) of every @route on a gateway service class."""
    found = []
    for name in dir(service_class):
        member = getattr(service_class, name, None)
        for entrypoint in getattr(member, "nameko_entrypoints", ()) or ():
            method, url = getattr(entrypoint, "method", None), getattr(entrypoint, "url", None)
            if method and url:
                for each in str(method).split(","):
                    found.append((each.strip().upper(), url, member.__doc__ or ""))
    return found


def build_openapi(service_class=None) -> dict:
    """The OpenAPI 3 document; with `service_class`, /api/v1 entrypoints not in the tables are listed as well."""
    builder = _Builder()
    for api in PUBLIC_ROUTES + STAFF_ROUTES:
        builder.table_route(api)
    for special in SPECIAL_ROUTES:
        builder.special_route(special)
    if service_class is not None:
        for method, url, doc in gateway_entrypoints(service_class):
            if url.startswith(P) and method.lower() not in builder.paths.get(url, {}):
                builder.other_entrypoint(method, url, doc)
    return builder.document()


@functools.cache
def _served_document() -> dict:
    from services.gateway.service import GatewayService  # the service imports this module

    return build_openapi(GatewayService)


class OpenApiRoutes(GatewayBase):
    @route("GET", OPENAPI_PATH)
    def openapi_document(self, request):
        """The OpenAPI 3 description of this API."""
        return json_response(_served_document())
