"""The consultation service: every use case of the policy office, the public and staff, over RPC.

Each RPC method is the same three steps (DESIGN.md convention 2): load the payload with the use case's marshmallow
schema into a command, call the domain handler with a fresh unit of work (and the actor for staff use cases), return
the handler's plain dict. The table below is the whole service; the rules live in consultation/. A call whose
database connection was lost before it committed runs once more (services.dependencies.retry_if_connection_lost).
"""
from __future__ import annotations

from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer

from consultation import accounts, handlers, report, schemas
from consultation import commands as c
from consultation.accounts import Actor
from consultation.events import EVENT_SCHEMAS
from consultation.model import OutboxMessage
from search.events import LINKS_SUGGESTED
from services.dependencies import UnitOfWork, retry_if_connection_lost
from services.health import database_ok
from services.messaging import reliable_event_handler

WINDOW_TICK_S = 5
PRUNE_TICK_S = 600


class Secrets(DependencyProvider):
    """The key that hashes voter tokens and client addresses (they are never stored in the clear)."""

    def setup(self):
        secret = self.container.config.get("CONSULTATION", {}).get("hash_secret") or "dev-only"
        self.hash_secret = str(secret).encode()

    def get_dependency(self, worker_ctx):
        return self.hash_secret


def _actor(actor):
    return Actor.from_dict(actor) if actor else None


def use_case(handler, schema_factory=None, *, staff=False, hashed=False, optional_actor=False):
    """An RPC method `name(payload=None, actor=None)` for one domain use case."""

    # Schemas keep no per-call state, and building one costs several times what loading a payload does.
    schema = schema_factory() if schema_factory else None

    def method(self, payload=None, actor=None):
        command = schemas.load_command(schema, payload or {}) if schema is not None else None
        kwargs = {}
        if staff or optional_actor:
            kwargs["actor"] = _actor(actor)
        if hashed:
            kwargs["hash_secret"] = self.secrets
        if command is None:
            return retry_if_connection_lost(self.uow, lambda: handler(self.uow(), **kwargs))
        return retry_if_connection_lost(self.uow, lambda: handler(self.uow(), command, **kwargs))

    method.__name__ = handler.__name__
    method.__doc__ = handler.__doc__
    return rpc(method)


def by_policy(command_class):
    return lambda: schemas.PolicyIdSchema(command_class=command_class)


def by_comment(command_class):
    return lambda: schemas.CommentIdSchema(command_class=command_class)


class ConsultationService:
    name = "consultation"

    uow = UnitOfWork("consultation", OutboxMessage, EVENT_SCHEMAS)
    secrets = Secrets()

    # policies, versions and the consultation window
    create_policy = use_case(handlers.create_policy, schemas.CreatePolicySchema, staff=True)
    update_policy_details = use_case(handlers.update_policy_details, schemas.UpdatePolicyDetailsSchema, staff=True)
    revise_draft = use_case(handlers.revise_draft, schemas.ReviseDraftSchema, staff=True)
    schedule_policy = use_case(handlers.schedule_policy, schemas.SchedulePolicySchema, staff=True)
    open_consultation = use_case(handlers.open_consultation, schemas.OpenConsultationSchema, staff=True)
    close_consultation = use_case(handlers.close_consultation, by_policy(c.CloseConsultation), staff=True)
    withdraw_policy = use_case(handlers.withdraw_policy, schemas.WithdrawPolicySchema, staff=True)
    get_policy = use_case(handlers.get_policy, schemas.GetPolicySchema, optional_actor=True)
    list_policies = use_case(handlers.list_policies, schemas.ListPoliciesSchema, optional_actor=True)
    diff_versions = use_case(handlers.diff_versions, schemas.DiffVersionsSchema, optional_actor=True)

    # comments, moderation, replies, votes
    submit_comment = use_case(handlers.submit_comment, schemas.SubmitCommentSchema, hashed=True)
    list_public_comments = use_case(handlers.list_public_comments, schemas.ListPublicCommentsSchema)
    endorse_comment = use_case(handlers.endorse_comment, schemas.EndorseCommentSchema, hashed=True)
    cast_vote = use_case(handlers.cast_vote, schemas.CastVoteSchema, hashed=True)
    poll_results = use_case(handlers.poll_results, by_policy(c.GetPollResults))
    moderate_comment = use_case(handlers.moderate_comment, schemas.ModerateCommentSchema, staff=True)
    bulk_moderate = use_case(handlers.bulk_moderate, schemas.BulkModerateSchema, staff=True)
    list_moderation_queue = use_case(handlers.list_moderation_queue, schemas.ListModerationQueueSchema, staff=True)
    comment_history = use_case(handlers.comment_history, by_comment(c.GetCommentHistory), staff=True)
    view_comment_original = use_case(handlers.view_comment_original, by_comment(c.ViewCommentOriginal), staff=True)
    post_reply = use_case(handlers.post_reply, schemas.PostReplySchema, staff=True)

    # explanations and coverage links
    create_explanation = use_case(handlers.create_explanation, schemas.CreateExplanationSchema, staff=True)
    update_explanation = use_case(handlers.update_explanation, schemas.UpdateExplanationSchema, staff=True)
    publish_explanation = use_case(handlers.publish_explanation, schemas.PublishExplanationSchema, staff=True)
    get_explanation = use_case(handlers.get_explanation, schemas.GetExplanationSchema, optional_actor=True)
    list_explanations = use_case(handlers.list_explanations, schemas.ListExplanationsSchema, optional_actor=True)
    decide_link = use_case(handlers.decide_link, schemas.DecideLinkSchema, staff=True)
    create_link = use_case(handlers.create_link, schemas.CreateLinkSchema, staff=True)
    list_policy_links = use_case(handlers.list_policy_links, schemas.ListPolicyLinksSchema, optional_actor=True)
    list_links_for_article = use_case(handlers.list_links_for_article, schemas.ListLinksForArticleSchema)

    # feedback report
    save_report = use_case(report.save_report, schemas.SaveReportSchema, staff=True)
    publish_report = use_case(report.publish_report, by_policy(c.PublishReport), staff=True)
    get_report = use_case(report.get_report, by_policy(c.GetReport), optional_actor=True)

    # accounts, audit log, site keys
    create_user = use_case(accounts.create_user, schemas.CreateUserSchema, staff=True)
    set_user_disabled = use_case(accounts.set_user_disabled, schemas.SetUserDisabledSchema, staff=True)
    reset_password = use_case(accounts.reset_password, schemas.ResetPasswordSchema, staff=True)
    set_user_roles = use_case(accounts.set_user_roles, schemas.SetUserRolesSchema, staff=True)
    list_audit_log = use_case(accounts.list_audit_log, schemas.ListAuditLogSchema, staff=True)
    create_site_key = use_case(accounts.create_site_key, schemas.CreateSiteKeySchema, staff=True)
    update_site_key = use_case(accounts.update_site_key, schemas.UpdateSiteKeySchema, staff=True)
    list_site_keys = use_case(accounts.list_site_keys, staff=True)

    @rpc
    def list_users(self, payload=None, actor=None):
        command = c.ListUsers(**(payload or {}))
        return retry_if_connection_lost(self.uow, lambda: accounts.list_users(self.uow(), command,
                                                                                actor=_actor(actor)))

    @rpc
    def get_site_key(self, key):
        return retry_if_connection_lost(self.uow, lambda: accounts.get_site_key(self.uow(), c.GetSiteKey(key=str(key))))

    @rpc
    def authenticate(self, payload):
        credentials = schemas.load_command(schemas.LoginSchema(), payload or {})
        return retry_if_connection_lost(self.uow, lambda: accounts.authenticate(
            self.uow(), credentials["username"], credentials["password"]))

    @rpc
    def approved_comments_csv(self, policy_id, offset=0, limit=2000):
        """A slice of the approved-comments CSV (header first); the gateway streams the slices."""
        return retry_if_connection_lost(self.uow, lambda: self._csv_slice(int(policy_id), offset, limit))

    def _csv_slice(self, policy_id, offset, limit):
        lines = []
        for index, line in enumerate(report.iter_approved_comments_csv(self.uow(), policy_id)):
            if index < offset:
                continue
            if len(lines) >= limit:
                return {"lines": lines, "next_offset": index}
            lines.append(line)
        return {"lines": lines, "next_offset": None}

    @rpc
    def health(self):
        return {"database": database_ok(self.uow)}

    @timer(interval=WINDOW_TICK_S)
    def open_and_close_due_consultations(self):
        """Consultations open and close at their scheduled times without anyone pressing a button."""
        handlers.advance_due(self.uow())

    @timer(interval=PRUNE_TICK_S)
    def forget_old_submission_attempts(self):
        """Rate-limit records older than the longest window are no longer needed."""
        handlers.prune_submission_attempts(self.uow())

    @reliable_event_handler("search", LINKS_SUGGESTED)
    def on_links_suggested(self, payload):
        handlers.record_link_suggestions(self.uow(), payload)
