"""The staff console: server-rendered pages for the policy office, moderators, editors and admins.

Every page and action is a row in CONSOLE_ROUTES (method, path, view, roles). The table is the single source for
registration, for the role check made before any view runs, and for the authorisation tests, so no route can be
added without saying who may use it. Views are thin: read the form, call the owning service's RPC with the actor
(the service checks roles again), render a template or redirect (POST → 303 → GET).

Sessions are the signed `tb_session` cookie (auth.Signer.issue_session) holding the actor and a CSRF token; every
POST must send that token back in the form field `csrf_token`, or it is refused with 403.
"""
from __future__ import annotations

import datetime as dt
import logging
import pathlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from markupsafe import Markup
from nameko import exceptions as nameko_exceptions
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from consultation.i18n import translate, translate_errors
from services.gateway.auth import ROLES, SESSION_COOKIE, TOKEN_MAX_AGE_S, csrf_ok
from services.gateway.base import GatewayBase
from services.gateway.errors import describe
from services.gateway.http import Route
from services.gateway.templating import gettext_for, render

log = logging.getLogger(__name__)

OFFICER, EDITOR, MODERATOR, ADMIN = "policy_officer", "editor", "moderator", "admin"
ANY_STAFF = (OFFICER, EDITOR, MODERATOR)
C = "/console"
LANG_COOKIE = "tb_lang"
LOGIN_CSRF_COOKIE = "tb_login_csrf"
MAX_FORM_BYTES = 4 * 1024 * 1024  # a pasted draft can be long (the domain allows 1,000,000 characters)
STATIC_DIR = pathlib.Path(__file__).resolve().parent / "static"
STATIC_FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
DEFAULT_TIME_ZONE = "Asia/Shanghai"
STANCES = ("support", "oppose", "neutral", "suggestion")
CHANNELS = ("widget", "api", "console_import")
REJECT_REASONS = ("spam", "abuse", "off_topic", "personal_data", "duplicate", "other")
DECISIONS = ("adopted", "partly_adopted", "not_adopted", "noted")
POLICY_STATES = ("draft", "scheduled", "open", "closed", "report_published", "withdrawn")
PAGE_SIZE = 20
QUEUE_PAGE_SIZE = 50

HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

STATE_NAMES = {"draft": "Draft", "scheduled": "Scheduled", "open": "Open for comments", "closed": "Closed",
               "report_published": "Report published", "withdrawn": "Withdrawn"}

COMMENT_STATE_NAMES = {"pending": "Pending", "approved": "Approved", "rejected": "Rejected", "hidden": "Hidden"}

# Confirmations shown after a redirect (?done=key). Only keys from this table are ever displayed.
NOTICES = {
    "created": "The draft was saved.",
    "updated": "Your changes were saved.",
    "revised": "The new version was saved.",
    "scheduled": "The consultation is scheduled.",
    "opened": "The consultation is open.",
    "closed": "The consultation is closed.",
    "withdrawn": "The draft was withdrawn.",
    "replied": "Your reply was posted.",
    "moderated": "The comment was moderated.",
    "bulk": "The selected comments were moderated.",
    "report_saved": "The report draft was saved.",
    "report_published": "The feedback report is published.",
    "explanation_saved": "The explanation was saved.",
    "explanation_published": "The explanation is published.",
    "link_confirmed": "The link was confirmed.",
    "link_rejected": "The suggestion was rejected.",
    "linked": "The article is linked to the policy.",
    "profile_saved": "The keywords and synonyms were saved.",
    "feed_added": "The feed was added.",
    "feed_paused": "The feed is paused.",
    "feed_resumed": "The feed is polled again.",
    "feed_polled": "The feed was polled.",
    "user_created": "The account was created.",
    "roles_saved": "The roles were saved.",
    "user_disabled": "The account is disabled.",
    "user_enabled": "The account is enabled.",
    "password_reset": "The password was changed.",
    "site_key_created": "The site key was created.",
    "site_key_saved": "The site key was saved.",
    "logged_out": "You are signed out.",
}


@dataclass(frozen=True)
class ConsoleRoute:
    method: str
    path: str
    view: str  # ConsoleRoutes.console_<view> answers it (prefixed: the gateway is one class of many mixins)
    roles: tuple[str, ...] | None  # None: no sign-in needed; admin may use every other route
    summary: str = ""

    @property
    def checks_csrf(self) -> bool:
        return self.method == "POST"


def page(path, view, roles, summary=""):
    return ConsoleRoute("GET", path, view, None if roles is None else tuple(roles), summary)


def action(path, view, roles, summary=""):
    return ConsoleRoute("POST", path, view, None if roles is None else tuple(roles), summary)


P = f"{C}/policies/<int:policy_id>"

CONSOLE_ROUTES = [
    # sign-in and the staff member's own account
    page(f"{C}/login", "login_page", None, "Sign-in form"),
    action(f"{C}/login", "login", None, "Check the password and start a session (login CSRF cookie)"),
    action(f"{C}/logout", "logout", ANY_STAFF, "End the session"),
    page(f"{C}/static/<name>", "static_file", None, "Console stylesheet and script"),
    page(C, "home", ANY_STAFF, "Start page with the areas the roles allow"),
    page(f"{C}/account", "account_page", ANY_STAFF, "Own account"),
    action(f"{C}/account/password", "change_own_password", ANY_STAFF, "Change own password"),
    # policy office
    page(f"{C}/policies", "policies_page", ANY_STAFF, "Policies with state and live counts"),
    page(f"{C}/policies/new", "new_policy_page", (OFFICER,), "Paste a draft"),
    action(f"{C}/policies/new", "create_policy", (OFFICER,), "Preview the parsed clauses or save the draft"),
    page(P, "policy_page", ANY_STAFF, "A policy: clauses, counts, window and actions"),
    page(f"{P}/edit", "edit_policy_page", (OFFICER,), "Edit title, summary, department, topics"),
    action(f"{P}/edit", "update_policy", (OFFICER,)),
    page(f"{P}/revise", "revise_page", (OFFICER,), "Paste a new version"),
    action(f"{P}/revise", "revise_policy", (OFFICER,), "Preview or save a new version"),
    page(f"{P}/diff", "diff_page", ANY_STAFF, "Clause diff between two versions"),
    action(f"{P}/schedule", "schedule_policy", (OFFICER,)),
    action(f"{P}/open", "open_policy", (OFFICER,)),
    action(f"{P}/close", "close_policy", (OFFICER,)),
    action(f"{P}/withdraw", "withdraw_policy", (OFFICER,)),
    page(f"{P}/comments", "policy_comments_page", (OFFICER,), "Published comments by clause with replies"),
    action(f"{C}/comments/<int:comment_id>/reply", "reply", (OFFICER,)),
    page(f"{P}/report", "report_page", (OFFICER,), "The feedback report per clause"),
    action(f"{P}/report", "save_report", (OFFICER,)),
    action(f"{P}/report/publish", "publish_report", (OFFICER,)),
    # moderation
    page(f"{C}/moderation", "moderation_page", (MODERATOR,), "The queue with filters and keyboard shortcuts"),
    action(f"{C}/comments/<int:comment_id>/moderate", "moderate", (MODERATOR,)),
    action(f"{C}/moderation/bulk", "bulk_moderate", (MODERATOR,)),
    page(f"{C}/comments/<int:comment_id>", "comment_page", (MODERATOR, OFFICER), "A comment and its history"),
    action(f"{C}/comments/<int:comment_id>/original", "comment_original", (MODERATOR,),
           "Show the unredacted text (audit-logged)"),
    # editors
    page(f"{P}/explanations", "explanations_page", (EDITOR,), "Explanations of a policy and the new-article form"),
    action(f"{P}/explanations", "create_explanation", (EDITOR,)),
    page(f"{P}/explanations/<int:explanation_id>", "explanation_page", (EDITOR,), "Edit an explanation"),
    action(f"{P}/explanations/<int:explanation_id>", "update_explanation", (EDITOR,)),
    action(f"{P}/explanations/<int:explanation_id>/publish", "publish_explanation", (EDITOR,)),
    page(f"{P}/links", "links_page", (EDITOR,), "Suggested and confirmed coverage, manual linking by search"),
    action(f"{P}/links", "create_link", (EDITOR,)),
    action(f"{C}/links/<int:link_id>/decision", "decide_link", (EDITOR,)),
    page(f"{P}/profile", "profile_page", (EDITOR, OFFICER), "Interest profile: keywords and synonyms"),
    action(f"{P}/profile", "save_profile", (EDITOR,)),
    page(f"{C}/feeds", "feeds_page", (EDITOR,), "Feeds with health and last error"),
    action(f"{C}/feeds", "add_feed", (EDITOR,)),
    action(f"{C}/feeds/<int:feed_id>/pause", "pause_feed", (EDITOR,)),
    action(f"{C}/feeds/<int:feed_id>/resume", "resume_feed", (EDITOR,)),
    action(f"{C}/feeds/<int:feed_id>/poll", "poll_feed", (EDITOR,)),
    # administration
    page(f"{C}/users", "users_page", (ADMIN,), "Accounts and roles"),
    action(f"{C}/users", "create_user", (ADMIN,)),
    action(f"{C}/users/<int:user_id>/roles", "set_user_roles", (ADMIN,)),
    action(f"{C}/users/<int:user_id>/disabled", "set_user_disabled", (ADMIN,)),
    action(f"{C}/users/<int:user_id>/password", "reset_user_password", (ADMIN,)),
    page(f"{C}/site-keys", "site_keys_page", (ADMIN,), "Widget site keys: origins and theme"),
    action(f"{C}/site-keys", "create_site_key", (ADMIN,)),
    action(f"{C}/site-keys/<key>", "update_site_key", (ADMIN,)),
    page(f"{C}/audit", "audit_page", (ADMIN,), "Who did what, when"),
]


def allowed(route: ConsoleRoute, actor: dict | None) -> bool:
    """Whether `actor` may use `route` (the same rule as auth.require_roles: admin may use everything)."""
    if route.roles is None:
        return True
    if actor is None:
        return False
    roles = set(actor.get("roles") or ())
    return ADMIN in roles or bool(roles.intersection(route.roles))


def may(actor: dict | None, *roles: str) -> bool:
    held = set((actor or {}).get("roles") or ())
    return ADMIN in held or bool(held.intersection(roles))


# --- small pure helpers (unit-tested) ------------------------------------------------------------------------------


def console_language(request) -> str:
    explicit = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if explicit in ("zh-CN", "zh", "en"):
        return "en" if explicit == "en" else "zh-CN"
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return "en" if best == "en" else "zh-CN"


def safe_next(target: str | None) -> str:
    """Only a path inside the console is a valid place to return to after signing in (no open redirect)."""
    if not target:
        return C
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(C) or target.startswith("//") or "\\" in target:
        return C
    return target


def truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def split_lines(text: str | None) -> list[str]:
    """One item per line (commas and Chinese commas separate too), blanks dropped, order kept, duplicates removed."""
    items = []
    for line in (text or "").replace("，", ",").replace("、", ",").splitlines():
        items.extend(part.strip() for part in line.split(","))
    return list(dict.fromkeys(item for item in items if item))


def parse_synonyms(text: str | None) -> tuple[dict[str, list[str]], list[str]]:
    """Lines `医保 = 医疗保障, 医疗保险` → ({"医保": ["医疗保障", "医疗保险"]}, bad lines)."""
    synonyms: dict[str, list[str]] = {}
    bad = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        term, sep, rest = line.replace("＝", "=").partition("=")
        values = split_lines(rest)
        if not sep or not term.strip() or not values:
            bad.append(line.strip())
            continue
        synonyms.setdefault(term.strip(), [])
        synonyms[term.strip()] = list(dict.fromkeys([*synonyms[term.strip()], *values]))
    return synonyms, bad


def format_synonyms(synonyms: dict | None) -> str:
    return "\n".join(f"{term} = {', '.join(values)}" for term, values in sorted((synonyms or {}).items()))


def parse_theme(text: str | None) -> tuple[dict[str, str], list[str]]:
    """Lines `--tb-accent: #0a5` → {"--tb-accent": "#0a5"}; the domain validates names and values."""
    theme, bad = {}, []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or not value.strip():
            bad.append(line.strip())
            continue
        theme[name.strip()] = value.strip().rstrip(";").strip()
    return theme, bad


def format_theme(theme: dict | None) -> str:
    return "\n".join(f"{name}: {value}" for name, value in sorted((theme or {}).items()))


def local_input_to_iso(value: str | None, time_zone: str | None) -> str | None:
    """A datetime-local form value ("2026-12-01T09:00") read in the consultation's zone, as aware ISO 8601."""
    if not value or not value.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return value.strip()  # let the domain schema report it as a bad date
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(time_zone or DEFAULT_TIME_ZONE))
    return moment.isoformat()


def as_datetime(value) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def local_time(value, time_zone: str | None = None) -> str:
    """A stored UTC time shown in the consultation's zone, to the minute (empty when unknown)."""
    moment = as_datetime(value)
    if moment is None:
        return ""
    try:
        zone = ZoneInfo(time_zone or DEFAULT_TIME_ZONE)
    except (KeyError, ValueError):
        zone = ZoneInfo(DEFAULT_TIME_ZONE)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def local_input(value, time_zone: str | None = None) -> str:
    moment = as_datetime(value)
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(time_zone or DEFAULT_TIME_ZONE)).strftime("%Y-%m-%dT%H:%M")


def draft_text_of(policy: dict) -> str:
    """The current version as pasteable text (preamble, chapter headings, clause labels), the start of a revision."""
    lines = []
    if policy.get("preamble"):
        lines.append(policy["preamble"].strip())
    chapter = None
    for clause in policy.get("clauses") or []:
        if clause.get("chapter") and clause["chapter"] != chapter:
            chapter = clause["chapter"]
            lines.append(chapter)
        separator = "　" if policy.get("language") == "zh" else " "
        lines.append(f"{clause['label']}{separator}{clause['text']}")
    return "\n".join(lines) + "\n"


def preview_draft(text: str, language: str | None = None) -> dict:
    """Parse pasted text the way the domain will when saving, so the officer sees the clauses first."""
    from consultation.parsing import parse_draft

    parsed = parse_draft(text or "", language if language in ("zh", "en") else None)
    return {
        "language": parsed.language,
        "preamble": parsed.preamble.strip(),
        "clauses": [{"number": c.number, "label": c.label, "chapter": c.chapter, "text": c.text}
                    for c in parsed.clauses],
        "warnings": [{"code": w.code, "message": w.message,
                      "label": parsed.clauses[w.clause_index].label
                      if w.clause_index is not None and w.clause_index < len(parsed.clauses) else None}
                     for w in parsed.warnings],
    }


# Parser warnings by code, in the reader's language (the domain's own message is English).
WARNINGS = {
    "empty_text": ("The draft is empty.", "The draft is empty."),
    "no_clauses": ("No numbered clauses were recognised; the whole text is kept as clause 1.",
                   "No numbered clauses were recognised; the whole text is kept as clause 1."),
    "duplicate_number": ("The number of %(label)s appears twice.", "A clause number appears twice."),
    "numbering_backwards": ("The numbering goes backwards at %(label)s.", "The clause numbering goes backwards."),
    "numbering_gap": ("Clause numbers are missing before %(label)s.", "Some clause numbers are missing."),
}


def warning_text(warning: dict, gettext) -> str:
    texts = WARNINGS.get(warning.get("code"))
    if texts is None:
        return warning.get("message") or ""
    if warning.get("label"):
        return gettext(texts[0]) % {"label": warning["label"]}
    return gettext(texts[1])


def field_errors(exc, language: str) -> dict:
    """A domain ValidationFailed (or newsfeed InvalidFeed) as {field: message} in the reader's language."""
    errors = getattr(exc, "errors", None)
    if not isinstance(errors, dict):
        errors = getattr(exc, "fields", None) if isinstance(getattr(exc, "fields", None), dict) else {}
    translated = translate_errors(errors, language)
    flat = {}
    for key, value in translated.items():
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value if not isinstance(v, dict | list)) or str(value)
        flat[key] = value
    return flat


def is_validation_error(exc) -> bool:
    return type(exc).__name__ in ("ValidationFailed", "InvalidFeed", "InvalidSearchQuery", "ValidationError")


_NOT_A_MARK = re.compile(r"<(?!/?mark>)")


def snippet(highlighted: str | None) -> Markup:
    """A search highlight: the backend escapes the text and adds <mark>; any other '<' is escaped here again, so
    nothing but <mark> can ever reach the page even if a backend forgot to escape."""
    return Markup(_NOT_A_MARK.sub("&lt;", highlighted or ""))


def html_response(body: str, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    for key, value in {**HTML_HEADERS, **(headers or {})}.items():
        response.headers[key] = value
    return response


def redirect(location: str, **params) -> Response:
    query = {key: value for key, value in params.items() if value not in (None, "")}
    location, hash_mark, fragment = location.partition("#")
    target = f"{location}{'&' if '?' in location else '?'}{urlencode(query)}" if query else location
    target += f"{hash_mark}{fragment}"
    response = Response("", status=303, headers={"Location": target})
    response.headers["Cache-Control"] = "no-store"
    return response


def describe_safely(exc, language: str) -> tuple[int, dict, dict]:
    """errors.describe, but an error page must never fail itself (e.g. on an argument nameko turned into text)."""
    try:
        return describe(exc, language)
    except Exception:  # noqa: BLE001
        log.exception("could not describe %s", type(exc).__name__)
        return 500, {"error": {"code": "internal_error", "message": "Something went wrong on our side."}}, {}


def minimal_error_page(status: int, message: str, language: str) -> Response:
    return html_response(render("console/error.html", language, view=None, status=status, message=message), status)


# --- the HTTP entrypoint -------------------------------------------------------------------------------------------


class ConsoleEntrypoint(Route):
    """The gateway's route for console pages: larger form bodies, and failures become HTML pages, not JSON."""

    def body_limit(self) -> int:
        return MAX_FORM_BYTES

    def error_response(self, exc, request):
        language = console_language(request)
        status, body, _headers = describe_safely(exc, language)
        return minimal_error_page(status, body["error"]["message"], language)


console_route = ConsoleEntrypoint.decorator


class View:
    """One request as a console view sees it: who is asking, in which language, and how to answer."""

    def __init__(self, request, language: str, session: dict | None, route: ConsoleRoute):
        self.request = request
        self.lang = language
        self.session = session
        self.route = route
        self.actor = {k: session[k] for k in ("user_id", "username", "roles")} if session else None
        self._ = gettext_for(language)

    @property
    def form(self):
        return self.request.form

    @property
    def args(self):
        return self.request.args

    def may(self, *roles: str) -> bool:
        return may(self.actor, *roles)

    def render(self, template: str, status: int = 200, **context) -> Response:
        notice_key = self.request.args.get("done")
        context.setdefault("errors", {})
        body = render(
            template, self.lang, view=self, actor=self.actor, csrf_token=(self.session or {}).get("csrf", ""),
            notice=self._(NOTICES[notice_key]) if notice_key in NOTICES else None, status=status,
            STANCES=STANCES, CHANNELS=CHANNELS, REJECT_REASONS=REJECT_REASONS, DECISIONS=DECISIONS,
            POLICY_STATES=POLICY_STATES, ROLES=ROLES, local_time=local_time, local_input=local_input, snippet=snippet,
            path=self.request.path, warning_text=lambda warning: warning_text(warning, self._), **context,
        )
        return html_response(body, status)

    def error(self, exc) -> Response:
        status, body, _headers = describe_safely(exc, self.lang)
        message = body["error"]["message"]
        state = getattr(exc, "from_state", None) if type(exc).__name__ == "InvalidTransition" else None
        if state in STATE_NAMES:  # the domain's sentence is English; say it in the reader's language
            message = self._("This cannot be done while the consultation is in the state “%(state)s”.") % {
                "state": self._(STATE_NAMES[state])}
        elif state in COMMENT_STATE_NAMES:
            message = self._("The comment is “%(state)s” and cannot take this action.") % {
                "state": self._(COMMENT_STATE_NAMES[state])}
        return self.render("console/error.html", status=status, message=message,
                           fields=field_errors(exc, self.lang) if body["error"].get("fields") else {})

    def url_with(self, **changes) -> str:
        params = {key: value for key, value in self.request.args.items() if key not in ("done", "lang")}
        params.update(changes)
        params = {key: value for key, value in params.items() if value not in (None, "")}
        return f"{self.request.path}?{urlencode(params)}" if params else self.request.path


def _int_or_none(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _make_entry(spec: ConsoleRoute):
    def entry(self, request, **url_args):
        return self._console_dispatch(spec, request, url_args)

    entry.__name__ = f"console_{spec.method.lower()}_{spec.view}"
    return console_route(spec.method, spec.path)(entry)


class ConsoleRoutes(GatewayBase):
    # --- dispatch: authentication, role, CSRF, errors -----------------------------------------------------------

    def _console_dispatch(self, spec: ConsoleRoute, request, url_args: dict) -> Response:
        language = console_language(request)
        session = self.settings.signer.read_session(request.cookies.get(SESSION_COOKIE, ""))
        view = View(request, language, session, spec)
        if spec.roles is not None:
            if session is None:
                if spec.method == "GET":
                    return redirect(f"{C}/login", next=request.full_path.rstrip("?"))
                return view.render("console/error.html", status=401, message=view._("Sign in first."))
            if not allowed(spec, view.actor):
                return view.render("console/error.html", status=403,
                                   message=view._("Your role does not allow this page or action."))
        if spec.checks_csrf and spec.view != "login":
            try:
                submitted = request.form.get("csrf_token")
            except RequestEntityTooLarge:
                return view.render("console/error.html", status=413, message=view._("The form is too large."))
            if not csrf_ok(session, submitted):
                return view.render("console/error.html", status=403, message=view._(
                    "This form has expired or did not come from the console. Reload the page and try again."))
        try:
            response = getattr(self, f"console_{spec.view}")(view, **url_args)
        except RequestEntityTooLarge:
            response = view.render("console/error.html", status=413, message=view._("The form is too large."))
        except nameko_exceptions.RpcTimeout as exc:
            response = view.error(exc)
        except Exception as exc:  # noqa: BLE001 - domain errors become a page with the translated message
            if _is_domain_error(exc):
                response = view.error(exc)
            else:
                raise
        if request.args.get("lang") in ("zh-CN", "en"):
            response.set_cookie(LANG_COOKIE, request.args["lang"], max_age=365 * 24 * 3600, path=C, samesite="Lax",
                                httponly=True, secure=self._console_secure_cookies())
        return response

    def _console_secure_cookies(self) -> bool:
        return truthy(self.settings.settings.get("secure_cookies", False))

    def _console_call(self, rpc: str, payload: dict, view: View):
        return getattr(self.consultation, rpc)(payload, view.actor)

    # --- sign-in ------------------------------------------------------------------------------------------------

    def console_login_page(self, view: View):
        if view.session is not None:
            return redirect(safe_next(view.args.get("next")))
        return self._console_login_form(view, status=200)

    def _console_login_form(self, view: View, status: int, **context):
        token = secrets.token_urlsafe(24)
        response = view.render("console/login.html", status=status, login_csrf=token,
                               next=safe_next(view.args.get("next") or view.form.get("next")), **context)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path=C, httponly=True, samesite="Strict",
                            secure=self._console_secure_cookies())
        return response

    def console_login(self, view: View):
        # Before sign-in there is no session to hold a CSRF token: the form and a cookie carry the same random value.
        expected = view.request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not csrf_ok({"csrf": expected}, view.form.get("csrf_token")):
            return view.render("console/error.html", status=403, message=view._(
                "This form has expired or did not come from the console. Reload the page and try again."))
        username = (view.form.get("username") or "").strip()
        try:
            user = self.consultation.authenticate({"username": username, "password": view.form.get("password") or ""})
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ == "Unauthenticated":
                retry = _int_or_none(getattr(exc, "retry_after_s", None))  # arrives as text over RPC
                if retry:
                    minutes = max(1, (retry + 59) // 60)
                    message = view._("Too many failed attempts: this account is locked. Try again in %(minutes)s "
                                     "minutes.") % {"minutes": minutes}
                    return self._console_login_form(view, status=429, login_error=message, username=username)
                return self._console_login_form(view, status=401, username=username,
                                        login_error=view._("The username or password is not right."))
            if is_validation_error(exc):
                return self._console_login_form(view, status=400, username=username, errors=field_errors(exc, view.lang))
            raise
        response = redirect(safe_next(view.form.get("next")))
        response.set_cookie(SESSION_COOKIE, self.settings.signer.issue_session(user), max_age=TOKEN_MAX_AGE_S,
                            path=C, httponly=True, samesite="Lax", secure=self._console_secure_cookies())
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=C)
        return response

    def console_logout(self, view: View):
        response = redirect(f"{C}/login", done="logged_out")
        response.delete_cookie(SESSION_COOKIE, path=C, httponly=True, samesite="Lax", secure=self._console_secure_cookies())
        return response

    def console_static_file(self, view: View, name: str):
        if name not in STATIC_FILES:
            return view.render("console/error.html", status=404, message=view._("Not found."))
        response = Response((STATIC_DIR / name).read_bytes(), status=200, headers={
            "Content-Type": STATIC_FILES[name], "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff"})
        return response

    def console_home(self, view: View):
        waiting = None
        if view.may(MODERATOR):
            # one bounded page, not a count over every comment: "100+" is all a moderator needs to know
            page = self._console_call("list_moderation_queue", {"queue": "pending", "limit": 100}, view)
            waiting = f"{len(page['items'])}{'+' if page.get('next_cursor') else ''}"
        return view.render("console/home.html", waiting=waiting)

    def console_account_page(self, view: View):
        return view.render("console/account.html")

    def console_change_own_password(self, view: View):
        new, again = view.form.get("new_password") or "", view.form.get("new_password_again") or ""
        if new != again:
            return view.render("console/account.html", status=400,
                               errors={"new_password_again": view._("The two passwords differ.")})
        try:
            self._console_call("reset_password", {"user_id": view.actor["user_id"], "new_password": new}, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                return view.render("console/account.html", status=400, errors=field_errors(exc, view.lang))
            raise
        return redirect(f"{C}/account", done="password_reset")

    # --- policy office ------------------------------------------------------------------------------------------

    def _console_policy(self, view: View, policy_id: int, version: int | None = None) -> dict:
        payload = {"policy_id": policy_id}
        if version:
            payload["version"] = version
        return self._console_call("get_policy", payload, view)

    def console_policies_page(self, view: View):
        state = view.args.get("state") or None
        page_number = max(1, _int_or_none(view.args.get("page")) or 1)
        payload = {"page": page_number, "page_size": PAGE_SIZE}
        if state in POLICY_STATES:
            payload["state"] = state
        result = self._console_call("list_policies", payload, view)
        pages = max(1, (result["total"] + PAGE_SIZE - 1) // PAGE_SIZE)
        return view.render("console/policies.html", result=result, state=state, pages=pages)

    def console_new_policy_page(self, view: View):
        return view.render("console/policy_new.html", form={"time_zone": DEFAULT_TIME_ZONE}, preview=None)

    def _console_policy_form(self, view: View) -> dict:
        form = {name: view.form.get(name, "") for name in
                ("title", "department", "summary", "topics", "language", "document_number", "time_zone", "text")}
        return form

    def console_create_policy(self, view: View):
        form = self._console_policy_form(view)
        if view.form.get("intent") == "preview":
            return view.render("console/policy_new.html", form=form,
                               preview=preview_draft(form["text"], form["language"] or None))
        payload = {
            "title": form["title"].strip(), "department": form["department"].strip(), "summary": form["summary"],
            "topics": split_lines(form["topics"]), "text": form["text"],
            "time_zone": form["time_zone"].strip() or DEFAULT_TIME_ZONE,
        }
        if form["language"] in ("zh", "en"):
            payload["language"] = form["language"]
        if form["document_number"].strip():
            payload["document_number"] = form["document_number"].strip()
        try:
            created = self._console_call("create_policy", payload, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                errors = field_errors(exc, view.lang)
                preview = preview_draft(form["text"], form["language"] or None) if form["text"].strip() else None
                if not (preview or {}).get("clauses") and "text" not in errors:
                    # the domain checks the details first; say now that the text needs clauses too
                    errors["text"] = translate("draft.no_clauses", view.lang)
                return view.render("console/policy_new.html", status=400, form=form, errors=errors, preview=preview)
            raise
        return redirect(f"{C}/policies/{created['policy_id']}", done="created")

    def console_policy_page(self, view: View, policy_id: int):
        policy = self._console_policy(view, policy_id, _int_or_none(view.args.get("version")))
        return view.render("console/policy.html", policy=policy)

    def console_edit_policy_page(self, view: View, policy_id: int):
        policy = self._console_policy(view, policy_id)
        form = {**policy, "topics": "\n".join(policy.get("topics") or []),
                "document_number": policy.get("document_number") or ""}
        return view.render("console/policy_edit.html", policy=policy, form=form)

    def console_update_policy(self, view: View, policy_id: int):
        form = {name: view.form.get(name, "") for name in
                ("title", "department", "summary", "topics", "document_number", "time_zone")}
        payload = {"policy_id": policy_id, "title": form["title"].strip(), "department": form["department"].strip(),
                   "summary": form["summary"], "topics": split_lines(form["topics"]),
                   "time_zone": form["time_zone"].strip() or DEFAULT_TIME_ZONE}
        if form["document_number"].strip():
            payload["document_number"] = form["document_number"].strip()
        try:
            self._console_call("update_policy_details", payload, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                policy = self._console_policy(view, policy_id)
                return view.render("console/policy_edit.html", status=400, policy=policy, form=form,
                                   errors=field_errors(exc, view.lang))
            raise
        return redirect(f"{C}/policies/{policy_id}", done="updated")

    def console_revise_page(self, view: View, policy_id: int):
        policy = self._console_policy(view, policy_id)
        return view.render("console/policy_revise.html", policy=policy,
                           form={"text": draft_text_of(policy), "change_note": ""}, preview=None)

    def console_revise_policy(self, view: View, policy_id: int):
        policy = self._console_policy(view, policy_id)
        form = {"text": view.form.get("text", ""), "change_note": view.form.get("change_note", "")}
        if view.form.get("intent") == "preview":
            return view.render("console/policy_revise.html", policy=policy, form=form,
                               preview=preview_draft(form["text"], policy.get("language")))
        try:
            revised = self._console_call("revise_draft", {"policy_id": policy_id, "text": form["text"],
                                                  "change_note": form["change_note"]}, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                return view.render("console/policy_revise.html", status=400, policy=policy, form=form,
                                   errors=field_errors(exc, view.lang),
                                   preview=preview_draft(form["text"], policy.get("language")))
            raise
        return redirect(f"{C}/policies/{policy_id}/diff", v_from=revised["version"] - 1, v_to=revised["version"],
                        done="revised")

    def console_diff_page(self, view: View, policy_id: int):
        policy = self._console_policy(view, policy_id)
        current = policy["current_version"]
        v_to = _int_or_none(view.args.get("v_to")) or current
        v_from = _int_or_none(view.args.get("v_from")) or max(1, v_to - 1)
        diff = None
        if v_from != v_to:
            diff = self._console_call("diff_versions", {"policy_id": policy_id, "v_from": v_from, "v_to": v_to}, view)
        return view.render("console/policy_diff.html", policy=policy, diff=diff, v_from=v_from, v_to=v_to,
                           show_all=view.args.get("all") == "1")

    def _console_window_action(self, view: View, policy_id: int, rpc: str, payload: dict, done: str):
        try:
            self._console_call(rpc, {"policy_id": policy_id, **payload}, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                policy = self._console_policy(view, policy_id)
                return view.render("console/policy.html", status=400, policy=policy,
                                   errors=field_errors(exc, view.lang), form=dict(view.form.items()))
            raise
        return redirect(f"{C}/policies/{policy_id}", done=done)

    def _console_policy_zone(self, view: View, policy_id: int) -> str:
        return view.form.get("time_zone") or DEFAULT_TIME_ZONE

    def console_schedule_policy(self, view: View, policy_id: int):
        zone = self._console_policy_zone(view, policy_id)
        payload = {"open_at": local_input_to_iso(view.form.get("open_at"), zone),
                   "close_at": local_input_to_iso(view.form.get("close_at"), zone)}
        return self._console_window_action(view, policy_id, "schedule_policy",
                                   {k: v for k, v in payload.items() if v is not None}, "scheduled")

    def console_open_policy(self, view: View, policy_id: int):
        close_at = local_input_to_iso(view.form.get("close_at"), self._console_policy_zone(view, policy_id))
        return self._console_window_action(view, policy_id, "open_consultation",
                                   {"close_at": close_at} if close_at else {}, "opened")

    def console_close_policy(self, view: View, policy_id: int):
        return self._console_window_action(view, policy_id, "close_consultation", {}, "closed")

    def console_withdraw_policy(self, view: View, policy_id: int):
        return self._console_window_action(view, policy_id, "withdraw_policy",
                                   {"reason": (view.form.get("reason") or "").strip()}, "withdrawn")

    def console_policy_comments_page(self, view: View, policy_id: int):
        policy = self._console_policy(view, policy_id)
        clause = _int_or_none(view.args.get("clause"))
        order = view.args.get("order") if view.args.get("order") in ("newest", "most_supported") else "newest"
        stance = view.args.get("stance") if view.args.get("stance") in STANCES else None
        by_stance, stance_refused = None, False
        if stance:
            # Only the staff comment query filters by stance (keyset-paged, newest first, approved only here).
            payload = {"queue": "all", "state": "approved", "policy_id": policy_id, "stance": stance,
                       "limit": PAGE_SIZE}
            if clause is not None:
                payload["clause_number"] = clause
            if view.args.get("cursor"):
                payload["cursor"] = view.args["cursor"][:500]
            try:
                by_stance = self._console_call("list_moderation_queue", payload, view)
            except Exception as exc:  # noqa: BLE001
                if type(exc).__name__ != "Forbidden":
                    raise
                stance, stance_refused = None, True
        page_number = max(1, _int_or_none(view.args.get("page")) or 1)
        payload = {"policy_id": policy_id, "order": order, "page": page_number, "page_size": PAGE_SIZE}
        if clause is not None:
            payload["clause_number"] = clause
        comments = {"items": [], "total": 0, "page": 1, "page_size": PAGE_SIZE}
        if by_stance is None and policy.get("published_at"):
            comments = self.consultation.list_public_comments(payload, None)
        pages = max(1, (comments["total"] + PAGE_SIZE - 1) // PAGE_SIZE)
        return view.render("console/policy_comments.html", policy=policy, comments=comments, clause=clause,
                           order=order, pages=pages, stance=stance, by_stance=by_stance,
                           stance_refused=stance_refused)

    def console_reply(self, view: View, comment_id: int):
        text = view.form.get("text") or ""
        back = safe_next(view.form.get("back")) if view.form.get("back") else f"{C}/comments/{comment_id}"
        try:
            self._console_call("post_reply", {"comment_id": comment_id, "text": text}, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                return view.render("console/error.html", status=400, message=view._("The reply was not posted."),
                                   fields=field_errors(exc, view.lang), back=back)
            raise
        return redirect(back, done="replied")

    def _console_report_rows(self, policy: dict, report: dict | None) -> list[dict]:
        saved = {entry["clause_number"]: entry for entry in (report or {}).get("entries") or []}
        rows = [{"clause_number": None, "label": None, "comment_count": None, **saved.get(None, {})}]
        for clause in policy.get("clauses") or []:
            rows.append({"clause_number": clause["number"], "label": clause["label"], "text": clause["text"],
                         "comment_count": clause.get("comment_count", 0),
                         **{k: v for k, v in saved.get(clause["number"], {}).items() if k != "comment_count"}})
        return rows

    def console_report_page(self, view: View, policy_id: int):
        policy = self._console_policy(view, policy_id)
        report = None
        try:
            report = self._console_call("get_report", {"policy_id": policy_id}, view)
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ != "NotFound":
                raise
        return view.render("console/report.html", policy=policy, report=report,
                           rows=self._console_report_rows(policy, report), summary=(report or {}).get("summary", ""))

    def console_save_report(self, view: View, policy_id: int):
        policy = self._console_policy(view, policy_id)
        entries, rows = [], []
        for index, row in enumerate(self._console_report_rows(policy, None)):
            prefix = f"entries-{index}-"
            entry = {"summary": (view.form.get(prefix + "summary") or "").strip(),
                     "decision": view.form.get(prefix + "decision") or "",
                     "reason": (view.form.get(prefix + "reason") or "").strip()}
            rows.append({**row, **entry})
            if entry["summary"] or entry["reason"]:
                entries.append({"clause_number": row["clause_number"], **entry, "_row": index})
        payload = {"policy_id": policy_id, "summary": view.form.get("summary", ""),
                   "entries": [{k: v for k, v in e.items() if k != "_row"} for e in entries]}
        try:
            self._console_call("save_report", payload, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                errors = field_errors(exc, view.lang)
                raw = getattr(exc, "errors", {}) or {}
                entry_errors = translate_errors(raw.get("entries"), view.lang) if isinstance(raw, dict) else None
                if isinstance(entry_errors, dict):  # entry index → messages, moved to the form rows they came from
                    for key, messages in entry_errors.items():
                        if str(key).isdigit() and int(key) < len(entries) and isinstance(messages, dict):
                            row = entries[int(key)]["_row"]
                            for name, message in messages.items():
                                errors[f"entries-{row}-{name}"] = message
                    errors.pop("entries", None)
                return view.render("console/report.html", status=400, policy=policy, report=None, rows=rows,
                                   summary=view.form.get("summary", ""), errors=errors)
            raise
        if view.form.get("intent") == "publish":
            self._console_call("publish_report", {"policy_id": policy_id}, view)
            return redirect(f"{C}/policies/{policy_id}/report", done="report_published")
        return redirect(f"{C}/policies/{policy_id}/report", done="report_saved")

    def console_publish_report(self, view: View, policy_id: int):
        self._console_call("publish_report", {"policy_id": policy_id}, view)
        return redirect(f"{C}/policies/{policy_id}/report", done="report_published")

    # --- moderation ---------------------------------------------------------------------------------------------

    def _console_queue_filters(self, view: View) -> dict:
        args = view.args
        filters = {"queue": args.get("queue") if args.get("queue") in ("pending", "flagged", "all") else "pending"}
        for name in ("policy_id", "clause_number"):
            number = _int_or_none(args.get(name))
            if number is not None:
                filters[name] = number
        if args.get("stance") in STANCES:
            filters["stance"] = args["stance"]
        if args.get("channel") in CHANNELS:
            filters["channel"] = args["channel"]
        if filters["queue"] == "all" and args.get("state") in ("pending", "approved", "rejected", "hidden"):
            filters["state"] = args["state"]
        return filters

    def console_moderation_page(self, view: View):
        filters = self._console_queue_filters(view)
        payload = {**filters, "limit": QUEUE_PAGE_SIZE}
        if view.args.get("cursor"):
            payload["cursor"] = view.args["cursor"][:500]
        queue = self._console_call("list_moderation_queue", payload, view)
        policies = self._console_call("list_policies", {"page": 1, "page_size": 100}, view)["items"]
        titles = {p["policy_id"]: p["title"] for p in policies}
        return view.render("console/moderation.html", queue=queue, filters=filters, policies=policies,
                           titles=titles, cursor=view.args.get("cursor"))

    def _console_back_to_queue(self, view: View) -> str:
        back = view.form.get("back") or f"{C}/moderation"
        return safe_next(back)

    def console_moderate(self, view: View, comment_id: int):
        action_name = view.form.get("action") or ""
        payload = {"comment_id": comment_id, "action": action_name}
        if view.form.get("reason_code"):
            payload["reason_code"] = view.form["reason_code"]
        if (view.form.get("note") or "").strip():
            payload["note"] = view.form["note"].strip()
        try:
            self._console_call("moderate_comment", payload, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                return view.render("console/error.html", status=400, message=view._("The comment was not moderated."),
                                   fields=field_errors(exc, view.lang), back=self._console_back_to_queue(view))
            raise
        return redirect(self._console_back_to_queue(view), done="moderated")

    def console_bulk_moderate(self, view: View):
        ids = [number for number in (_int_or_none(v) for v in view.form.getlist("comment_ids")) if number]
        payload = {"comment_ids": ids, "action": view.form.get("action") or ""}
        if view.form.get("reason_code"):
            payload["reason_code"] = view.form["reason_code"]
        try:
            result = self._console_call("bulk_moderate", payload, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                return view.render("console/error.html", status=400, message=view._("Nothing was moderated."),
                                   fields=field_errors(exc, view.lang), back=self._console_back_to_queue(view))
            raise
        if result.get("failed"):
            return view.render("console/bulk_result.html", result=result, back=self._console_back_to_queue(view))
        return redirect(self._console_back_to_queue(view), done="bulk")

    def console_comment_page(self, view: View, comment_id: int, original: dict | None = None):
        history = self._console_call("comment_history", {"comment_id": comment_id}, view)
        comment = history["comment"]
        policy = None
        try:
            policy = self._console_policy(view, comment["policy_id"])
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ != "NotFound":
                raise
        return view.render("console/comment.html", history=history, comment=comment, policy=policy,
                           original=original)

    def console_comment_original(self, view: View, comment_id: int):
        original = self._console_call("view_comment_original", {"comment_id": comment_id}, view)
        return self.console_comment_page(view, comment_id, original=original)

    # --- editors ------------------------------------------------------------------------------------------------

    def _console_explanations(self, view: View, policy_id: int) -> list[dict]:
        return self._console_call("list_explanations", {"policy_id": policy_id, "include_drafts": True}, view)

    def _console_explanation_form(self, view: View) -> dict:
        return {
            "kind": view.form.get("kind") or "article", "title": view.form.get("title", ""),
            "body_html": view.form.get("body_html", ""), "url": view.form.get("url", ""),
            "outlet": view.form.get("outlet", ""), "language": view.form.get("language") or "zh",
            "clause_numbers": [n for n in (_int_or_none(v) for v in view.form.getlist("clause_numbers")) if n],
        }

    def console_explanations_page(self, view: View, policy_id: int):
        policy = self._console_policy(view, policy_id)
        return view.render("console/explanations.html", policy=policy, explanations=self._console_explanations(view, policy_id),
                           form={"kind": "article", "language": policy.get("language") or "zh", "clause_numbers": []})

    def _console_explanation_payload(self, form: dict, creating: bool) -> dict:
        payload = {"title": form["title"].strip(), "clause_numbers": form["clause_numbers"]}
        if creating:
            payload["kind"], payload["language"] = form["kind"], form["language"]
        for name in ("body_html", "url", "outlet"):
            if form[name].strip():
                payload[name] = form[name].strip()
        return payload

    def console_create_explanation(self, view: View, policy_id: int):
        form = self._console_explanation_form(view)
        try:
            created = self._console_call("create_explanation",
                                 {"policy_id": policy_id, **self._console_explanation_payload(form, True)}, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                policy = self._console_policy(view, policy_id)
                return view.render("console/explanations.html", status=400, policy=policy, form=form,
                                   explanations=self._console_explanations(view, policy_id),
                                   errors=field_errors(exc, view.lang))
            raise
        if view.form.get("intent") == "publish":
            self._console_call("publish_explanation", {"explanation_id": created["explanation_id"]}, view)
            return redirect(f"{C}/policies/{policy_id}/explanations", done="explanation_published")
        return redirect(f"{C}/policies/{policy_id}/explanations/{created['explanation_id']}",
                        done="explanation_saved")

    def _console_find_explanation(self, view: View, policy_id: int, explanation_id: int) -> dict:
        for explanation in self._console_explanations(view, policy_id):
            if explanation["explanation_id"] == explanation_id:
                return explanation
        from consultation.exceptions import NotFound

        raise NotFound(f"explanation {explanation_id} not found")

    def console_explanation_page(self, view: View, policy_id: int, explanation_id: int):
        policy = self._console_policy(view, policy_id)
        explanation = self._console_find_explanation(view, policy_id, explanation_id)
        form = {**explanation, **{k: explanation.get(k) or "" for k in ("body_html", "url", "outlet")}}
        return view.render("console/explanation.html", policy=policy, explanation=explanation, form=form)

    def console_update_explanation(self, view: View, policy_id: int, explanation_id: int):
        explanation = self._console_find_explanation(view, policy_id, explanation_id)
        form = {**self._console_explanation_form(view), "kind": explanation["kind"], "language": explanation["language"]}
        try:
            self._console_call("update_explanation",
                       {"explanation_id": explanation_id, **self._console_explanation_payload(form, False)}, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                policy = self._console_policy(view, policy_id)
                return view.render("console/explanation.html", status=400, policy=policy, explanation=explanation,
                                   form=form, errors=field_errors(exc, view.lang))
            raise
        if view.form.get("intent") == "publish":
            self._console_call("publish_explanation", {"explanation_id": explanation_id}, view)
            return redirect(f"{C}/policies/{policy_id}/explanations/{explanation_id}", done="explanation_published")
        return redirect(f"{C}/policies/{policy_id}/explanations/{explanation_id}", done="explanation_saved")

    def console_publish_explanation(self, view: View, policy_id: int, explanation_id: int):
        self._console_call("publish_explanation", {"explanation_id": explanation_id}, view)
        return redirect(f"{C}/policies/{policy_id}/explanations/{explanation_id}", done="explanation_published")

    def console_links_page(self, view: View, policy_id: int, errors: dict | None = None, status: int = 200):
        policy = self._console_policy(view, policy_id)
        suggested = self._console_call("list_policy_links", {"policy_id": policy_id, "state": "suggested"}, view)
        confirmed = self._console_call("list_policy_links", {"policy_id": policy_id, "state": "confirmed"}, view)
        query = (view.args.get("q") or "").strip()
        results, search_error = None, None
        if query:
            page_number = max(1, _int_or_none(view.args.get("page")) or 1)
            try:
                results = self.search_service.search({"q": query[:200], "doc_type": "article", "per_page": "10",
                                                      "page": str(page_number)})
            except Exception as exc:  # noqa: BLE001
                if not is_validation_error(exc):
                    raise
                search_error = "; ".join(str(v) for v in field_errors(exc, view.lang).values())
        linked_ids = {link["article_id"] for link in confirmed}
        return view.render("console/links.html", status=status, policy=policy, suggested=suggested,
                           confirmed=confirmed, query=query, results=results, search_error=search_error,
                           linked_ids=linked_ids, errors=errors or {})

    def console_create_link(self, view: View, policy_id: int):
        payload = {"policy_id": policy_id, "article_title": (view.form.get("article_title") or "").strip(),
                   "article_url": (view.form.get("article_url") or "").strip()}
        for name in ("article_id", "article_outlet", "article_published_at"):
            if (view.form.get(name) or "").strip():
                payload[name] = view.form[name].strip()
        clause = _int_or_none(view.form.get("clause_number"))
        if clause:
            payload["clause_number"] = clause
        try:
            self._console_call("create_link", payload, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                return self.console_links_page(view, policy_id, errors=field_errors(exc, view.lang), status=400)
            raise
        return redirect(f"{C}/policies/{policy_id}/links", done="linked")

    def console_decide_link(self, view: View, link_id: int):
        decision = view.form.get("decision") or ""
        self._console_call("decide_link", {"link_id": link_id, "decision": decision}, view)
        policy_id = _int_or_none(view.form.get("policy_id"))
        back = f"{C}/policies/{policy_id}/links" if policy_id else C
        return redirect(back, done="link_confirmed" if decision == "confirm" else "link_rejected")

    def console_profile_page(self, view: View, policy_id: int, form: dict | None = None, errors: dict | None = None,
                     status: int = 200):
        policy = self._console_policy(view, policy_id)
        profile = self.search_service.get_profile(policy_id)
        if form is None:
            form = {"keywords": "\n".join((profile or {}).get("keywords") or []),
                    "synonyms": format_synonyms((profile or {}).get("synonyms"))}
        return view.render("console/profile.html", status=status, policy=policy, profile=profile, form=form,
                           errors=errors or {})

    def console_save_profile(self, view: View, policy_id: int):
        form = {"keywords": view.form.get("keywords", ""), "synonyms": view.form.get("synonyms", "")}
        keywords = split_lines(form["keywords"])
        synonyms, bad = parse_synonyms(form["synonyms"])
        errors = {}
        if bad:
            errors["synonyms"] = view._("Write each line as: term = synonym, synonym (not understood: %(lines)s)") % {
                "lines": " / ".join(bad[:3])}
        if len(keywords) > 200 or any(len(k) > 100 for k in keywords):
            errors["keywords"] = view._("At most 200 keywords of up to 100 characters each.")
        if errors:
            return self.console_profile_page(view, policy_id, form=form, errors=errors, status=400)
        self._console_policy(view, policy_id)  # the consultation service decides whether this policy exists for staff
        saved = self.search_service.set_profile_terms(policy_id, keywords, synonyms)
        if saved is None:
            return self.console_profile_page(view, policy_id, form=form, status=409, errors={"keywords": view._(
                "The policy is not indexed yet: publish it (schedule or open the consultation) first.")})
        return redirect(f"{C}/policies/{policy_id}/profile", done="profile_saved")

    def console_feeds_page(self, view: View, form: dict | None = None, errors: dict | None = None, status: int = 200):
        feeds = self.newsfeed.list_feeds()
        return view.render("console/feeds.html", status=status, feeds=feeds,
                           form=form or {"poll_interval_s": "900", "language": ""}, errors=errors or {})

    def console_add_feed(self, view: View):
        form = {name: (view.form.get(name) or "").strip() for name in
                ("url", "outlet", "language", "category", "poll_interval_s", "time_zone")}
        payload = {key: value for key, value in form.items() if value}
        if "poll_interval_s" in payload:
            payload["poll_interval_s"] = _int_or_none(payload["poll_interval_s"]) or payload["poll_interval_s"]
        try:
            self.newsfeed.add_feed(payload)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc) or type(exc).__name__ == "FeedAlreadyExists":
                errors = field_errors(exc, view.lang) or {"url": str(getattr(exc, "message", exc))}
                return self.console_feeds_page(view, form=form, errors=errors, status=400)
            raise
        return redirect(f"{C}/feeds", done="feed_added")

    def console_pause_feed(self, view: View, feed_id: int):
        self.newsfeed.pause_feed(feed_id)
        return redirect(f"{C}/feeds", done="feed_paused")

    def console_resume_feed(self, view: View, feed_id: int):
        self.newsfeed.resume_feed(feed_id)
        return redirect(f"{C}/feeds", done="feed_resumed")

    def console_poll_feed(self, view: View, feed_id: int):
        self.newsfeed.poll_now(feed_id)
        return redirect(f"{C}/feeds", done="feed_polled")

    # --- administration -----------------------------------------------------------------------------------------

    def console_users_page(self, view: View, form: dict | None = None, errors: dict | None = None, status: int = 200):
        users = self._console_call("list_users", {"include_disabled": True}, view)
        return view.render("console/users.html", status=status, users=users, form=form or {"roles": []},
                           errors=errors or {})

    def console_create_user(self, view: View):
        form = {"username": (view.form.get("username") or "").strip(),
                "display_name": (view.form.get("display_name") or "").strip(),
                "roles": [r for r in view.form.getlist("roles") if r in ROLES]}
        payload = {**form, "password": view.form.get("password") or ""}
        try:
            self._console_call("create_user", payload, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                return self.console_users_page(view, form=form, errors=field_errors(exc, view.lang), status=400)
            if type(exc).__name__ == "Conflict":
                return self.console_users_page(view, form=form, status=409,
                                       errors={"username": view._("This username is taken.")})
            raise
        return redirect(f"{C}/users", done="user_created")

    def console_set_user_roles(self, view: View, user_id: int):
        roles = [r for r in view.form.getlist("roles") if r in ROLES]
        try:
            self._console_call("set_user_roles", {"user_id": user_id, "roles": roles}, view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                return self.console_users_page(view, status=400, errors={f"roles-{user_id}": "; ".join(
                    str(v) for v in field_errors(exc, view.lang).values())})
            raise
        return redirect(f"{C}/users", done="roles_saved")

    def console_set_user_disabled(self, view: View, user_id: int):
        disabled = truthy(view.form.get("disabled", "true"))
        self._console_call("set_user_disabled", {"user_id": user_id, "disabled": disabled}, view)
        return redirect(f"{C}/users", done="user_disabled" if disabled else "user_enabled")

    def console_reset_user_password(self, view: View, user_id: int):
        try:
            self._console_call("reset_password", {"user_id": user_id, "new_password": view.form.get("new_password") or ""},
                       view)
        except Exception as exc:  # noqa: BLE001
            if is_validation_error(exc):
                return self.console_users_page(view, status=400, errors={f"password-{user_id}": "; ".join(
                    str(v) for v in field_errors(exc, view.lang).values())})
            raise
        return redirect(f"{C}/users", done="password_reset")

    def console_site_keys_page(self, view: View, form: dict | None = None, errors: dict | None = None, status: int = 200,
                       edited: str | None = None):
        keys = self._console_call("list_site_keys", {}, view)
        base_url = str(self.settings.settings.get("public_base_url") or "").rstrip("/")
        return view.render("console/site_keys.html", status=status, keys=keys, form=form or {}, errors=errors or {},
                           edited=edited, format_theme=format_theme, base_url=base_url)

    def _console_site_key_form(self, view: View) -> tuple[dict, dict, dict]:
        form = {name: view.form.get(name, "") for name in ("name", "allowed_origins", "theme", "key")}
        theme, bad = parse_theme(form["theme"])
        errors = {"theme": view._("Write each line as: --name: value")} if bad else {}
        payload = {"name": form["name"].strip(), "allowed_origins": split_lines(form["allowed_origins"]),
                   "theme": theme}
        return form, payload, errors

    def console_create_site_key(self, view: View):
        form, payload, errors = self._console_site_key_form(view)
        if form["key"].strip():
            payload["key"] = form["key"].strip()
        if not errors:
            try:
                self._console_call("create_site_key", payload, view)
            except Exception as exc:  # noqa: BLE001
                if is_validation_error(exc):
                    errors = field_errors(exc, view.lang)
                elif type(exc).__name__ == "Conflict":
                    errors = {"key": view._("This key exists already.")}
                else:
                    raise
        if errors:
            return self.console_site_keys_page(view, form=form, errors=errors, status=400)
        return redirect(f"{C}/site-keys", done="site_key_created")

    def console_update_site_key(self, view: View, key: str):
        form, payload, errors = self._console_site_key_form(view)
        payload["enabled"] = truthy(view.form.get("enabled", "false"))
        if not errors:
            try:
                self._console_call("update_site_key", {"key": key, **payload}, view)
            except Exception as exc:  # noqa: BLE001
                if not is_validation_error(exc):
                    raise
                errors = field_errors(exc, view.lang)
        if errors:
            return self.console_site_keys_page(view, errors={f"{key}-{k}": v for k, v in errors.items()}, status=400,
                                       edited=key)
        return redirect(f"{C}/site-keys", done="site_key_saved")

    def console_audit_page(self, view: View):
        payload = {"limit": 50}
        for name in ("object_type", "object_id"):
            value = (view.args.get(name) or "").strip()
            if value:
                payload[name] = value[:64]
        before = _int_or_none(view.args.get("before_id"))
        if before:
            payload["before_id"] = before
        log = self._console_call("list_audit_log", payload, view)
        return view.render("console/audit.html", log=log, object_type=payload.get("object_type", ""),
                           object_id=payload.get("object_id", ""))


def _is_domain_error(exc) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("consultation.", "newsfeed.", "search.")) or isinstance(
        exc, nameko_exceptions.RemoteError)


for _index, _spec in enumerate(CONSOLE_ROUTES):
    setattr(ConsoleRoutes, f"_console_{_index}", _make_entry(_spec))
