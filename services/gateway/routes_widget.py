"""The embeddable consultation widget: widget.js, the iframe page it loads, the iframe's form posts, and the demo
news site that embeds it.

Readers arrive by the million from news articles, so the iframe page is served from a per-process render cache
(services/gateway/widget_cache.py) and costs no RPC on a hit; consultation events reach every gateway process on a
broadcast queue and drop the entries they make stale. Per-reader values (the fallback voter token, the signed form
token, a submission id) are placeholders in the cached HTML, filled in on the way out.

There are no cookies: the iframe keeps a voter token in its own localStorage when the browser allows it and falls
back to a per-page token otherwise. Every POST carries a signed, expiring form token bound to the site key and
policy (CSRF), a honeypot field, and goes through the consultation service's rate limits. All reader text is escaped
by jinja2's autoescape; the page's Content-Security-Policy allows no inline script at all, and `frame-ancestors`
names exactly the origins the site key allows.
"""
from __future__ import annotations

import base64
import datetime as dt
import functools
import gzip
import hashlib
import json
import logging
import pathlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import eventlet
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner
from nameko.events import BROADCAST, event_handler
from nameko.exceptions import RpcTimeout
from werkzeug.exceptions import NotFound as HttpNotFound
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from consultation import events as consultation_events
from consultation.exceptions import NotFound, PayloadTooLarge, RateLimited, ValidationFailed, WindowClosed
from consultation.i18n import translate_errors, window_closed_message
from consultation.report import report_document
from consultation.sanitize import sanitize_rich_text
from services.config import ROOT
from services.demo import DEMO_SITE_KEY
from services.gateway.base import GatewayBase
from services.gateway.http import route
from services.gateway.templating import environment, gettext_for
from services.gateway.widget_cache import Page, RenderCache, placeholder
from services.kernel.db import DatabaseUnavailable

log = logging.getLogger(__name__)

HERE = pathlib.Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
DEMO_SITE_DIR = ROOT / "deploy" / "demo" / "site"

PAGE_TTL_S = 30.0  # safety net: votes announce nothing, and an event may be missed while the broker restarts
SITE_KEY_TTL_S = 60.0  # a disabled key stops framing within a minute at most
UNKNOWN_SITE_KEY_TTL_S = 10.0
ARTICLE_TTL_S = 60.0
FORM_TOKEN_MAX_AGE_S = 6 * 3600
COMMENTS_PAGE_SIZE = 10
MAX_PAGE = 500
MAX_COMMENT_CHARS = 5000
WIDGET_MAX_BODY = 64 * 1024  # 5,000 Chinese characters are about 45 KB once form-encoded
JSON_CLIENT_HEADER = "X-Requested-With"
JSON_CLIENT_VALUE = "tb-widget"
VOTE_STANCES = ("support", "oppose", "neutral")
COMMENT_STANCES = ("support", "oppose", "neutral", "suggestion")
ORDERS = ("newest", "most_supported")
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,200}$")
SITE_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{4,64}$")
THEME_NAME = re.compile(r"^--[A-Za-z0-9\-_]{1,60}$")
THEME_VALUE_FORBIDDEN = re.compile(r"[;{}<>\\\"'\n\r]|url\(|expression\(|@import|/\*", re.IGNORECASE)
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
BASE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin"}

# One cache of each kind per gateway process (nameko makes a new service instance per worker, so not on `self`).
PAGE_CACHE = RenderCache(ttl_s=PAGE_TTL_S, max_entries=4000)
SITE_KEY_CACHE = RenderCache(ttl_s=SITE_KEY_TTL_S, max_entries=5000)
ARTICLE_CACHE = RenderCache(ttl_s=ARTICLE_TTL_S, max_entries=10000)
_UNKNOWN_SITE = {"unknown": True}


# --- reader input -------------------------------------------------------------------------------------------------


class WidgetUnavailable(Exception):
    """The widget cannot be shown (unknown or disabled site key, unknown policy): a neutral message, never details."""


def widget_language(args) -> str:
    """`lang` from widget.js (data-lang or the reader's browser); Chinese unless English is asked for."""
    value = (args.get("lang") or "").strip().lower()
    if value.startswith("en"):
        return "en"
    if value.startswith("zh"):
        return "zh-CN"
    return ""


def reader_language(request) -> str:
    explicit = widget_language(request.args)  # POSTs carry it in the action URL: reading a body comes later
    if explicit:
        return explicit
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return "en" if best == "en" else "zh-CN"


def _int(value, low: int, high: int) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


@dataclass(frozen=True)
class FrameParams:
    """The iframe URL's query, validated so that nothing a reader types can grow the cache without bound."""

    site: str | None
    policy_id: int | None
    article_url: str | None
    order: str
    page: int
    language: str

    @classmethod
    def parse(cls, args, language: str) -> FrameParams:
        site = (args.get("site") or "").strip() or None
        if site is not None and not SITE_KEY_PATTERN.match(site):
            raise WidgetUnavailable("malformed site key")
        policy_id = _int(args.get("policy"), 1, 2**31 - 1) if args.get("policy") else None
        if args.get("policy") and policy_id is None:
            raise WidgetUnavailable("malformed policy id")
        article_url = (args.get("article_url") or "").strip() or None
        if article_url is not None:
            parts = urlsplit(article_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or len(article_url) > 2000:
                raise WidgetUnavailable("malformed article url")
            article_url = parts._replace(fragment="").geturl()
        if policy_id is None and article_url is None:
            raise WidgetUnavailable("no policy and no article")
        order = args.get("order") if args.get("order") in ORDERS else "newest"
        page = _int(args.get("page"), 1, MAX_PAGE) or 1
        return cls(site, policy_id, article_url, order, page, language)


@functools.lru_cache(maxsize=8)
def form_signer(secret: str) -> TimestampSigner:
    # Built once per secret: key derivation is most of the cost of signing, and every page view signs a token.
    return TimestampSigner(secret, salt="tb-widget-form", sep=".")


def issue_form_token(secret: str, site: str | None, policy_id: int) -> str:
    """A signed, expiring token that a POST must bring back: proof the form came from a page we rendered for this
    site key and policy (the iframe has no cookies to tie it to, and needs none)."""
    return form_signer(secret).sign(f"{site or '-'}~{int(policy_id)}~{secrets.token_urlsafe(6)}").decode()


def form_token_ok(secret: str, token: str | None, site: str | None, policy_id: int,
                  max_age: int = FORM_TOKEN_MAX_AGE_S) -> bool:
    if not token or len(token) > 500:
        return False
    try:
        value = form_signer(secret).unsign(token, max_age=max_age).decode()
    except (BadSignature, SignatureExpired, UnicodeDecodeError):
        return False
    signed_site, _, rest = value.partition("~")
    signed_policy, _, _nonce = rest.partition("~")
    return signed_site == (site or "-") and signed_policy == str(int(policy_id))


def same_origin_post(request) -> bool:
    """A browser POST names its page's origin; the widget's forms live on the gateway's own pages."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None  # "null" (sandboxed or privacy-stripped) is not our page
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


def safe_theme(theme: dict | None) -> dict[str, str]:
    """Only CSS custom properties with inert values survive (the consultation service checks too)."""
    safe = {}
    for name, value in (theme or {}).items():
        if isinstance(name, str) and isinstance(value, str) and THEME_NAME.match(name) \
                and not THEME_VALUE_FORBIDDEN.search(value) and len(value) <= 200:
            safe[name] = value.strip()
    return safe


def theme_css(theme: dict[str, str]) -> str:
    if not theme:
        return ""
    return ":root{" + "".join(f"{name}:{value};" for name, value in sorted(theme.items())) + "}"


def csp_header(allowed_origins: list[str] | None, style_hash: str | None, *, standalone: bool = False) -> str:
    """The page's Content-Security-Policy; `frame-ancestors` is exactly the site key's origins."""
    if standalone:
        ancestors = "'none'"
    elif allowed_origins is None:
        ancestors = "*"  # the neutral "unavailable" page must show inside any embed
    else:
        ancestors = " ".join(allowed_origins) or "'none'"
    style = "'self'" + (f" '{style_hash}'" if style_hash else "")
    return (f"default-src 'none'; script-src 'self'; style-src {style}; img-src 'self' data:; connect-src 'self'; "
            f"form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}")


def style_hash(css: str) -> str | None:
    if not css:
        return None
    return "sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()


def safe_href(url: str | None) -> str | None:
    if not url:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


# --- presentation helpers -----------------------------------------------------------------------------------------


def _parse_time(value) -> dt.datetime | None:
    if not value:
        return None
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def local_minute(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else ""


def local_time(value, time_zone: str | None) -> str:
    moment = _parse_time(value)
    if moment is None:
        return ""
    try:
        zone = ZoneInfo(time_zone or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("Asia/Shanghai")
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def countdown_parts(close_at, now: dt.datetime) -> tuple[int, int, int] | None:
    """(days, hours, minutes) left, or None when there is no future deadline."""
    moment = _parse_time(close_at)
    if moment is None or moment <= now:
        return None
    minutes = int((moment - now).total_seconds() // 60)
    return minutes // 1440, (minutes % 1440) // 60, minutes % 60


def percentages(tally: dict) -> dict[str, int]:
    total = sum(int(tally.get(key, 0)) for key in VOTE_STANCES)
    if not total:
        return dict.fromkeys(VOTE_STANCES, 0)
    return {key: round(100 * int(tally.get(key, 0)) / total) for key in VOTE_STANCES}


def frame_query(site, language, **extra) -> str:
    params = {"site": site, "lang": language, **extra}
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


# --- static files ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    gzipped: bytes
    etag: str
    content_type: str


def _load_static(name: str) -> StaticFile | None:
    path = STATIC_DIR / name
    if "/" in name or not path.is_file() or path.suffix not in STATIC_TYPES:
        return None
    body = path.read_bytes()
    return StaticFile(body, gzip.compress(body, 9, mtime=0), '"' + hashlib.sha256(body).hexdigest()[:20] + '"',
                      STATIC_TYPES[path.suffix])


_STATIC: dict[str, StaticFile | None] = {}


def static_file(name: str) -> StaticFile | None:
    if name not in _STATIC:
        _STATIC[name] = _load_static(name)
    return _STATIC[name]


def static_response(request, name: str, max_age: int) -> Response:
    item = static_file(name)
    if item is None:
        raise HttpNotFound()
    headers = {**BASE_HEADERS, "Cache-Control": f"public, max-age={max_age}", "ETag": item.etag,
               "Vary": "Accept-Encoding", "Access-Control-Allow-Origin": "*",
               "Cross-Origin-Resource-Policy": "cross-origin"}
    if request.headers.get("If-None-Match") == item.etag:
        return Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return Response(item.gzipped, headers={**headers, "Content-Type": item.content_type,
                                               "Content-Encoding": "gzip"})
    return Response(item.body, headers={**headers, "Content-Type": item.content_type})


# --- the mixin ------------------------------------------------------------------------------------------------------


class WidgetRoutes(GatewayBase):
    # ---- static ----

    @route("GET", "/widget.js")
    def widget_js(self, request):
        """The embed script news sites include with one <script> tag (under 10 KB gzipped, no dependencies)."""
        return static_response(request, "widget.js", max_age=300)

    @route("GET", "/widget/static/<name>")
    def widget_static(self, request, name):
        return static_response(request, name, max_age=3600)

    # ---- the iframe page and the standalone page ----

    @route("GET", "/widget/frame")
    def widget_frame(self, request):
        """The iframe widget.js inserts: ?site=KEY&policy=ID (or &article_url=URL)&lang=zh-CN|en&order=&page=."""
        return self._widget_view(request, standalone=False)

    @route("GET", "/widget/page")
    def widget_page(self, request):
        """The same consultation as a page of its own: the <noscript> link target, and a fallback for any reader."""
        return self._widget_view(request, standalone=True)

    def _widget_view(self, request, *, standalone: bool):
        language = reader_language(request)
        try:
            params = FrameParams.parse(request.args, language)
            site = self._site(params.site, required=not standalone)
            page, policy_id = self._policy_page(params, site, standalone=standalone)
            return self._page_response(page, site, policy_id, request=request)
        except (WidgetUnavailable, NotFound, HttpNotFound):
            return self._unavailable(language, status=404)
        except (RpcTimeout, eventlet.Timeout):
            return self._unavailable(language, status=503)
        except Exception:  # noqa: BLE001 - a reader never sees a stack trace
            log.exception("widget page failed")
            return self._unavailable(language, status=500)

    def _site(self, key: str | None, *, required: bool) -> dict | None:
        if key is None:
            if required:
                raise WidgetUnavailable("no site key")
            return None

        def fetch():
            try:
                found = self.consultation.get_site_key(key)
            except NotFound:
                return _UNKNOWN_SITE
            return {"key": found["key"], "allowed_origins": list(found.get("allowed_origins") or []),
                    "theme": safe_theme(found.get("theme")), "enabled": bool(found.get("enabled", True))}

        site = SITE_KEY_CACHE.get_or_render(("site", key), ("site", key), fetch)
        if site is _UNKNOWN_SITE or site.get("unknown"):
            SITE_KEY_CACHE.put(("site", key), ("site", key), site, ttl_s=UNKNOWN_SITE_KEY_TTL_S)
            raise WidgetUnavailable("unknown or disabled site key")
        if not site["enabled"]:
            raise WidgetUnavailable("disabled site key")
        return site

    def _article_policies(self, article_url: str) -> list[dict]:
        def fetch():
            return self.consultation.list_links_for_article({"article_url": article_url}, None)

        return ARTICLE_CACHE.get_or_render(("article", article_url), ("article", article_url), fetch)

    def _policy_page(self, params: FrameParams, site: dict | None, *, standalone: bool) -> tuple[Page, int | None]:
        theme = (site or {}).get("theme") or {}
        # The cached page carries its CSP header, so the origins are part of what it is keyed by.
        theme_key = (tuple(sorted(theme.items())), tuple((site or {}).get("allowed_origins") or ()))
        linked: list[dict] = []
        policy_id = params.policy_id
        if params.article_url is not None:
            linked = self._article_policies(params.article_url)
            ids = [item["policy_id"] for item in linked]
            if not ids:
                key = ("no-links", params.language, theme_key, standalone)
                return PAGE_CACHE.get_or_render(key, ("article", params.article_url),
                                                lambda: self._render_no_links(params, site, theme, standalone)), None
            if policy_id not in ids:
                policy_id = ids[0]
        article_key = params.article_url if len(linked) > 1 else None
        key = ("policy", policy_id, params.language, (site or {}).get("key"), theme_key, params.order, params.page,
               standalone, article_key)
        page = PAGE_CACHE.get_or_render(
            key, ("policy", policy_id),
            lambda: self._render_policy(params, policy_id, site, theme, standalone, linked if article_key else []))
        return page, policy_id

    def _fetch_policy_data(self, policy_id: int, order: str, page: int) -> dict:
        """The RPCs one render needs, issued concurrently (they are independent reads)."""
        calls = {
            "policy": lambda: self.consultation.get_policy({"policy_id": policy_id}, None),
            "comments": lambda: self.consultation.list_public_comments(
                {"policy_id": policy_id, "order": order, "page": page, "page_size": COMMENTS_PAGE_SIZE}, None),
            "explanations": lambda: self.consultation.list_explanations({"policy_id": policy_id}, None),
            "links": lambda: self.consultation.list_policy_links({"policy_id": policy_id}, None),
            "report": lambda: self._optional(lambda: self.consultation.get_report({"policy_id": policy_id}, None)),
        }
        pool = eventlet.GreenPool(len(calls))
        running = {name: pool.spawn(call) for name, call in calls.items()}
        return {name: thread.wait() for name, thread in running.items()}

    @staticmethod
    def _optional(call):
        try:
            return call()
        except NotFound:
            return None

    def _render_policy(self, params: FrameParams, policy_id: int, site, theme, standalone, linked) -> Page:
        data = self._fetch_policy_data(policy_id, params.order, params.page)
        return self._page_from(params, site, theme, standalone,
                               self._policy_context(params, site, data, linked, standalone=standalone))

    def _render_no_links(self, params, site, theme, standalone) -> Page:
        context = {"site_key": (site or {}).get("key"), "language": params.language}
        return self._page("widget/no_consultation.html", params.language, site, theme, standalone, context)

    def _policy_context(self, params: FrameParams, site, data: dict, linked: list[dict], *, standalone: bool = False,
                        **overrides) -> dict:
        policy = data["policy"]
        language = params.language
        site_key = (site or {}).get("key")
        now = dt.datetime.now(dt.UTC)
        clauses = [{**clause, "percent": percentages(clause.get("votes") or {})} for clause in policy["clauses"]]
        comments = data["comments"]
        pages = max(1, -(-int(comments.get("total", 0)) // COMMENTS_PAGE_SIZE))
        labels = {clause["number"]: clause["label"] for clause in policy["clauses"]}
        report = data.get("report")
        report_doc = report_document(report, "en" if language == "en" else "zh") \
            if report and report.get("state") == "published" else None
        base_query = {"site": site_key, "lang": language, "policy": policy["policy_id"]}
        if params.article_url and linked:
            base_query["article_url"] = params.article_url

        def page_url(**changes):
            query = {**base_query, "order": params.order, "page": params.page, **changes}
            if query.get("page") == 1:
                query.pop("page")
            if query.get("order") == "newest":
                query.pop("order")
            return "?" + urlencode({k: v for k, v in query.items() if v not in (None, "")})

        return {
            "policy": policy,
            "clauses": clauses,
            "clause_labels": labels,
            "poll": policy.get("votes") or {},
            "poll_percent": percentages(policy.get("votes") or {}),
            "comments": comments,
            "comment_pages": pages,
            "order": params.order,
            "page": params.page,
            "page_url": page_url,
            "explanations": [
                {**item, "body_html": sanitize_rich_text(item.get("body_html") or ""), "href": safe_href(item.get("url"))}
                for item in data["explanations"]
            ],
            "links": [{**item, "href": safe_href(item.get("article_url"))} for item in data["links"]],
            "report": report_doc,
            "countdown": countdown_parts(policy.get("close_at"), now),
            "close_at_local": local_minute(policy.get("close_at_local")),
            "close_at_iso": (_parse_time(policy.get("close_at")) or now).isoformat() if policy.get("close_at") else "",
            "open_at_local": local_minute(policy.get("open_at_local")),
            "site_key": site_key,
            "language": language,
            "linked": [{**item, "href": "?" + urlencode({**base_query, "policy": item["policy_id"]})}
                       for item in linked],
            "standalone_url": "/widget/page?" + frame_query(site_key, language, policy=policy["policy_id"]),
            "post_query": frame_query(site_key, language, view="page" if standalone else None),
            "when": lambda value: local_time(value, policy.get("time_zone")),
            "notice": None,
            "errors": {},
            "form": {},
            "voted": None,
            **overrides,
        }

    def _page(self, template: str, language: str, site, theme, standalone, context) -> Page:
        css = theme_css(theme)
        html = environment(language).get_template(template).render(
            theme_css=css, standalone=standalone, reader=_READER_PLACEHOLDERS, **context)
        headers = {"Content-Security-Policy": csp_header((site or {}).get("allowed_origins") if site else None,
                                                          style_hash(css), standalone=standalone or site is None)}
        return Page.from_html(html, headers)

    def _page_from(self, params, site, theme, standalone, context) -> Page:
        return self._page("widget/policy.html", params.language, site, theme, standalone, context)

    def _reader_values(self, site_key: str | None, policy_id: int | None) -> dict[str, str]:
        values = {"page_token": secrets.token_urlsafe(18), "submission_id": secrets.token_urlsafe(12), "csrf": ""}
        if policy_id is not None:
            values["csrf"] = issue_form_token(self._secret(), site_key, policy_id)
        return values

    def _secret(self) -> str:
        return str(self.settings.settings.get("secret_key", ""))

    def _page_response(self, page: Page, site, policy_id: int | None, *, status: int | None = None,
                       extra_headers: dict | None = None, request=None) -> Response:
        values = self._reader_values((site or {}).get("key"), policy_id)
        headers = [*BASE_HEADERS.items(), *page.headers, ("Cache-Control", "private, no-store"),
                   ("Vary", "Accept-Encoding"), *(extra_headers or {}).items()]
        if request is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            body = page.gzip_body(values)
            headers.append(("Content-Encoding", "gzip"))
        else:
            body = page.body_bytes(values)
        return Response(body, status=status or page.status, headers=headers, content_type="text/html; charset=utf-8")

    def _unavailable(self, language: str, status: int) -> Response:
        html = environment(language).get_template("widget/unavailable.html").render(
            theme_css="", standalone=False, reader=_READER_PLACEHOLDERS, language=language)
        headers = {**BASE_HEADERS, "Content-Security-Policy": csp_header(None, None), "Cache-Control": "no-store"}
        return Response(Page.from_html(html).body({}), status=status, headers=headers,
                        content_type="text/html; charset=utf-8")

    # ---- form posts from the iframe ----

    @route("POST", "/widget/policies/<int:policy_id>/votes")
    def widget_vote(self, request, policy_id):
        return self._post(request, policy_id, self._do_vote)

    @route("POST", "/widget/policies/<int:policy_id>/comments")
    def widget_comment(self, request, policy_id):
        return self._post(request, policy_id, self._do_comment)

    @route("POST", "/widget/policies/<int:policy_id>/endorsements")
    def widget_endorse(self, request, policy_id):
        return self._post(request, policy_id, self._do_endorse)

    def _post(self, request, policy_id: int, action):
        language = reader_language(request)
        wants_json = request.headers.get(JSON_CLIENT_HEADER) == JSON_CLIENT_VALUE
        _ = gettext_for(language)
        try:
            if (request.content_length or 0) > WIDGET_MAX_BODY:
                raise RequestEntityTooLarge()
            request.max_content_length = WIDGET_MAX_BODY
            form = request.form
            site_key = (request.args.get("site") or form.get("site") or "").strip() or None
            site = self._site(site_key, required=False) if site_key else None
            if not same_origin_post(request) or not form_token_ok(self._secret(), form.get("csrf"), site_key,
                                                                   policy_id):
                return self._post_error(request, policy_id, site, language, wants_json, 403, "form_expired",
                                        _("This form has expired. Reload the page and try again."))
            voter_token = (form.get("voter_token") or "").strip()
            if not TOKEN_PATTERN.match(voter_token):
                voter_token = secrets.token_urlsafe(18)  # the page lost its token; act as a one-off reader
            outcome = action(request, form, policy_id, site_key, voter_token, language)
            if wants_json:
                return _json(outcome, 200 if outcome.get("ok") else outcome.get("status", 400))
            return self._post_page(request, policy_id, site, language, outcome)
        except RequestEntityTooLarge:
            return self._post_error(request, policy_id, None, language, wants_json, 413, "payload_too_large",
                                    _("Your comment is too long to send. Please shorten it."))
        except WidgetUnavailable:
            return self._post_error(request, policy_id, None, language, wants_json, 404, "unavailable",
                                    _("This consultation is not available here."))
        except NotFound:
            return self._post_error(request, policy_id, None, language, wants_json, 404, "not_found",
                                    _("This consultation is not available here."))
        except (RpcTimeout, eventlet.Timeout, DatabaseUnavailable):
            return self._post_error(request, policy_id, None, language, wants_json, 503, "service_timeout",
                                    _("We could not reach the consultation service. Please try again shortly."))
        except Exception:  # noqa: BLE001 - a reader gets a sentence, the log gets the trace
            log.exception("widget post failed")
            return self._post_error(request, policy_id, None, language, wants_json, 500, "internal_error",
                                    _("Something went wrong on our side. Please try again later."))

    def _domain_errors(self, call, language: str) -> dict:
        """Run an RPC; a domain refusal becomes an outcome the reader can read (and act on)."""
        _ = gettext_for(language)
        try:
            return {"ok": True, "result": call()}
        except ValidationFailed as exc:
            return {"ok": False, "status": 400, "code": "validation_failed",
                    "message": _("Please correct the highlighted fields."),
                    "fields": _flat_fields(translate_errors(exc.errors, language))}
        except RateLimited as exc:
            wait = max(1, int(exc.retry_after_s))
            return {"ok": False, "status": 429, "code": "rate_limited", "retry_after": wait,
                    "message": _("You are sending comments faster than we accept them. "
                                 "Please try again in %(seconds)s seconds.") % {"seconds": wait}}
        except WindowClosed as exc:
            return {"ok": False, "status": 409, "code": "window_closed",
                    "message": window_closed_message(exc, "en" if language == "en" else "zh")}
        except PayloadTooLarge:
            return {"ok": False, "status": 413, "code": "payload_too_large",
                    "message": _("Your comment is too long to send. Please shorten it.")}

    def _do_vote(self, request, form, policy_id, site_key, voter_token, language) -> dict:
        _ = gettext_for(language)
        stance = form.get("stance")
        clause_number = _int(form.get("clause_number"), 1, 100000) if form.get("clause_number") else None
        if stance not in VOTE_STANCES:
            return {"ok": False, "status": 400, "code": "validation_failed",
                    "message": _("Choose support, oppose or neutral."), "fields": {"stance": _("Choose one.")}}
        payload = {"policy_id": policy_id, "stance": stance, "voter_token": voter_token}
        if clause_number is not None:
            payload["clause_number"] = clause_number
        outcome = self._domain_errors(lambda: self.consultation.cast_vote(payload, None), language)
        if outcome["ok"]:
            results = outcome.pop("result")["results"]
            tally = results["policy"] if clause_number is None else next(
                (c for c in results["clauses"] if c["clause_number"] == clause_number), {})
            outcome.update({"kind": "vote", "stance": stance, "clause_number": clause_number,
                            "tally": {k: int(tally.get(k, 0)) for k in (*VOTE_STANCES, "total")},
                            "percent": percentages(tally), "results": results,
                            "message": _("Thank you, your vote is counted.")})
        return outcome

    def _do_comment(self, request, form, policy_id, site_key, voter_token, language) -> dict:
        _ = gettext_for(language)
        if (form.get("website") or "").strip():
            # The honeypot: people never see this field, form-filling robots do. Answer as if accepted.
            log.info("widget comment dropped by the honeypot (policy %s)", policy_id)
            return {"ok": True, "kind": "comment", "reference": None,
                    "message": _("Thank you. Your comment was received and will appear after review.")}
        text = (form.get("text") or "").strip()
        fields = {}
        if not text:
            fields["text"] = _("Write your comment first.")
        elif len(text) > MAX_COMMENT_CHARS:
            fields["text"] = _("Comments can be at most %(count)s characters.") % {"count": MAX_COMMENT_CHARS}
        if form.get("stance") not in COMMENT_STANCES:
            fields["stance"] = _("Choose your position.")
        if fields:
            return {"ok": False, "status": 400, "code": "validation_failed",
                    "message": _("Please correct the highlighted fields."), "fields": fields, "form": dict(form)}
        payload = {
            "policy_id": policy_id, "text": text, "stance": form["stance"], "channel": "widget",
            "voter_token": voter_token, "client_ip": request.remote_addr or "unknown",
            "contact_consent": form.get("contact_consent") in ("1", "on", "true", "yes"),
            "language": "en" if language == "en" else "zh",
        }
        clause_number = _int(form.get("clause_number"), 1, 100000) if form.get("clause_number") else None
        if clause_number is not None:
            payload["clause_number"] = clause_number
        for name in ("display_name", "contact"):
            value = (form.get(name) or "").strip()
            if value:
                payload[name] = value
        if site_key:
            payload["site_key"] = site_key
        source_url = (form.get("source_url") or "").strip()
        if source_url and safe_href(source_url) and len(source_url) <= 2000:
            payload["source_url"] = source_url
        submission_id = (form.get("submission_id") or "").strip()
        if TOKEN_PATTERN.match(submission_id or "") or 12 <= len(submission_id) <= 100:
            payload["idempotency_key"] = f"widget:{submission_id[:90]}"
        outcome = self._domain_errors(lambda: self.consultation.submit_comment(payload, None), language)
        if outcome["ok"]:
            receipt = outcome.pop("result")
            outcome.update({"kind": "comment", "reference": receipt["reference"],
                            "clause_number": receipt.get("clause_number"),
                            "message": _("Thank you. Your comment was received and will appear after review.")})
        else:
            outcome["form"] = {k: v for k, v in form.items() if k not in ("csrf", "voter_token", "website")}
        return outcome

    def _do_endorse(self, request, form, policy_id, site_key, voter_token, language) -> dict:
        _ = gettext_for(language)
        comment_id = _int(form.get("comment_id"), 1, 2**31 - 1)
        if comment_id is None:
            return {"ok": False, "status": 400, "code": "validation_failed", "message": _("Unknown comment.")}
        outcome = self._domain_errors(
            lambda: self.consultation.endorse_comment({"comment_id": comment_id, "voter_token": voter_token}, None),
            language)
        if outcome["ok"]:
            result = outcome.pop("result")
            outcome.update({"kind": "endorse", "comment_id": comment_id, "support_count": result["support_count"],
                            "message": _("Thank you for your support.")})
        return outcome

    def _post_page(self, request, policy_id: int, site, language: str, outcome: dict) -> Response:
        """Without JavaScript a form post answers with the whole widget again, showing the outcome."""
        params = FrameParams(site=(site or {}).get("key"), policy_id=policy_id, article_url=None, order="newest",
                             page=1, language=language)
        data = self._fetch_policy_data(policy_id, "newest", 1)
        overrides = {"notice": outcome, "errors": outcome.get("fields") or {}, "form": outcome.get("form") or {}}
        if outcome.get("kind") == "vote" and outcome.get("clause_number") is None:
            overrides.update({"voted": outcome["stance"], "poll": outcome["tally"], "poll_percent": outcome["percent"]})
        standalone = site is None or request.args.get("view") == "page"
        context = self._policy_context(params, site, data, [], standalone=standalone, **overrides)
        page = self._page_from(params, site, (site or {}).get("theme") or {}, standalone, context)
        status = 200 if outcome.get("ok") else outcome.get("status", 400)
        headers = {"Retry-After": str(outcome["retry_after"])} if outcome.get("retry_after") else None
        return self._page_response(page, site, policy_id, status=status, extra_headers=headers, request=request)

    def _post_error(self, request, policy_id, site, language, wants_json, status, code, message) -> Response:
        if wants_json:
            return _json({"ok": False, "code": code, "message": message}, status)
        return self._message_page(language, status, message)

    def _message_page(self, language: str, status: int, message: str) -> Response:
        html = environment(language).get_template("widget/unavailable.html").render(
            theme_css="", standalone=False, reader=_READER_PLACEHOLDERS, language=language, message=message)
        headers = {**BASE_HEADERS, "Content-Security-Policy": csp_header(None, None), "Cache-Control": "no-store"}
        return Response(Page.from_html(html).body({}), status=status, headers=headers,
                        content_type="text/html; charset=utf-8")

    # ---- cache invalidation: every gateway process hears every event (broadcast) and drops what it made stale ----

    def _invalidate_policy(self, payload):
        policy_id = (payload or {}).get("policy_id")
        if policy_id is not None:
            PAGE_CACHE.invalidate(("policy", int(policy_id)))

    @event_handler("consultation", consultation_events.COMMENT_MODERATED, handler_type=BROADCAST,
                   reliable_delivery=False)
    def widget_on_comment_moderated(self, payload):
        self._invalidate_policy(payload)

    @event_handler("consultation", consultation_events.REPLY_POSTED, handler_type=BROADCAST, reliable_delivery=False)
    def widget_on_reply_posted(self, payload):
        self._invalidate_policy(payload)

    @event_handler("consultation", consultation_events.POLICY_UPDATED, handler_type=BROADCAST,
                   reliable_delivery=False)
    def widget_on_policy_updated(self, payload):
        self._invalidate_policy(payload)
        ARTICLE_CACHE.clear()  # linked policies' titles and states are part of article lists

    @event_handler("consultation", consultation_events.CONSULTATION_OPENED, handler_type=BROADCAST,
                   reliable_delivery=False)
    def widget_on_consultation_opened(self, payload):
        self._invalidate_policy(payload)
        ARTICLE_CACHE.clear()

    @event_handler("consultation", consultation_events.CONSULTATION_CLOSED, handler_type=BROADCAST,
                   reliable_delivery=False)
    def widget_on_consultation_closed(self, payload):
        self._invalidate_policy(payload)
        ARTICLE_CACHE.clear()

    @event_handler("consultation", consultation_events.EXPLANATION_PUBLISHED, handler_type=BROADCAST,
                   reliable_delivery=False)
    def widget_on_explanation_published(self, payload):
        self._invalidate_policy(payload)

    @event_handler("consultation", consultation_events.LINK_CONFIRMED, handler_type=BROADCAST,
                   reliable_delivery=False)
    def widget_on_link_confirmed(self, payload):
        self._invalidate_policy(payload)
        url = (payload or {}).get("article_url")
        if url:
            ARTICLE_CACHE.invalidate(("article", urlsplit(url)._replace(fragment="").geturl()))
            PAGE_CACHE.invalidate(("article", urlsplit(url)._replace(fragment="").geturl()))

    @event_handler("consultation", consultation_events.REPORT_PUBLISHED, handler_type=BROADCAST,
                   reliable_delivery=False)
    def widget_on_report_published(self, payload):
        self._invalidate_policy(payload)

    # ---- the demo news site ----

    @route("GET", "/demo/")
    def demo_index(self, request):
        """A pretend news site whose articles embed the widget (linked from `balloon run`'s printed URLs)."""
        return _html(demo_environment().get_template("index.html").render(
            articles=demo_articles(), widget_base=demo_widget_base(request.host_url)))

    @route("GET", "/demo/articles/<slug>")
    def demo_article(self, request, slug):
        """One article with the embed snippet. ?site=KEY previews another site key (its origins permitting)."""
        article = next((item for item in demo_articles() if item["slug"] == slug), None)
        if article is None:
            raise HttpNotFound()
        site_key = request.args.get("site") or DEMO_SITE_KEY
        if not SITE_KEY_PATTERN.match(site_key):
            site_key = DEMO_SITE_KEY
        policy_id = None
        if article.get("policy_title"):
            found = self.consultation.list_policies({"page_size": 100}, None)
            policy_id = next((p["policy_id"] for p in found["items"] if p["title"] == article["policy_title"]), None)
        page_url = f"{request.host_url.rstrip('/')}/demo/articles/{slug}"
        html = demo_environment().get_template("article.html").render(
            article=article, articles=demo_articles(), policy_id=policy_id, site_key=site_key,
            widget_base=demo_widget_base(request.host_url), canonical=article.get("canonical") or page_url)
        return _html(html)

    @route("GET", "/demo/site/<name>")
    def demo_site_static(self, request, name):
        path = DEMO_SITE_DIR / name
        if "/" in name or not name.endswith(".css") or not path.is_file():
            raise HttpNotFound()
        return Response(path.read_bytes(), headers={**BASE_HEADERS, "Content-Type": "text/css; charset=utf-8",
                                                    "Cache-Control": "public, max-age=300"})


def demo_articles() -> list[dict]:
    return json.loads((DEMO_SITE_DIR / "articles.json").read_text(encoding="utf-8"))


def demo_environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(DEMO_SITE_DIR)), autoescape=True)


def loopback_twin(origin: str) -> str | None:
    """http://localhost:8000 ↔ http://127.0.0.1:8000: the same server under another origin."""
    parts = urlsplit(origin)
    twin = {"localhost": "127.0.0.1", "127.0.0.1": "localhost"}.get(parts.hostname or "")
    if twin is None:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{twin}{port}"


def demo_widget_base(host_url: str) -> str:
    """The demo article loads the widget from the loopback twin of its own origin, so the iframe is cross-origin
    exactly as on a real news site (third-party storage rules and all)."""
    origin = host_url.rstrip("/")
    return loopback_twin(origin) or origin


def _html(html: str, status: int = 200) -> Response:
    return Response(html, status=status, headers={**BASE_HEADERS, "Cache-Control": "no-cache"},
                    content_type="text/html; charset=utf-8")


_READER_PLACEHOLDERS = {name: placeholder(name) for name in ("page_token", "submission_id", "csrf")}


def _flat_fields(fields) -> dict[str, str]:
    flat = {}
    for key, value in (fields or {}).items():
        if isinstance(value, dict):
            value = next(iter(value.values()), "")
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        flat[str(key)] = str(value)
    return flat


def _json(payload: dict, status: int) -> Response:
    headers = {**BASE_HEADERS, "Cache-Control": "no-store"}
    if payload.get("retry_after"):
        headers["Retry-After"] = str(payload["retry_after"])
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status, headers=headers,
                    content_type="application/json")
