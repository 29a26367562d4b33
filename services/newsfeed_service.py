"""The newsfeed service: polls news feeds on a timer and announces new and changed articles."""
from __future__ import annotations

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer

from newsfeed import handlers, schemas
from newsfeed.events import EVENT_SCHEMAS
from newsfeed.fetch import Fetcher, FetchPolicy
from newsfeed.model import OutboxMessage
from services.dependencies import UnitOfWork
from services.health import database_ok

POLL_TICK_S = 2
POLLS_AT_ONCE = 8


class FeedFetcher(DependencyProvider):
    """One polite HTTP fetcher per process (per-host concurrency limits are shared by all workers)."""

    def setup(self):
        settings = self.container.config.get("NEWSFEED", {})
        self.fetcher = Fetcher(FetchPolicy(allow_private_addresses=bool(settings.get("allow_private_addresses", True))))

    def stop(self):
        self.fetcher.close()

    def get_dependency(self, worker_ctx):
        return self.fetcher


class NewsfeedService:
    name = "newsfeed"

    uow = UnitOfWork("newsfeed", OutboxMessage, EVENT_SCHEMAS)
    fetcher = FeedFetcher()

    @timer(interval=POLL_TICK_S)
    def poll_due_feeds(self):
        """Each due feed is claimed (so overlapping ticks do not poll it twice) and polled, a few at a time."""
        feed_ids = handlers.due_feeds(self.uow(), limit=50)
        pool = eventlet.GreenPool(POLLS_AT_ONCE)
        for feed_id in feed_ids:
            pool.spawn_n(handlers.poll_feed, self.uow(), feed_id, self.fetcher)
        pool.waitall()

    @rpc
    def health(self):
        return {"database": database_ok(self.uow)}

    @rpc
    def add_feed(self, payload):
        return handlers.add_feed(self.uow(), schemas.load_add_feed(payload), self.fetcher)

    @rpc
    def update_feed(self, feed_id, payload):
        return handlers.update_feed(self.uow(), schemas.load_update_feed({**payload, "feed_id": feed_id}))

    @rpc
    def pause_feed(self, feed_id):
        return handlers.pause_feed(self.uow(), int(feed_id))

    @rpc
    def resume_feed(self, feed_id):
        return handlers.resume_feed(self.uow(), int(feed_id))

    @rpc
    def remove_feed(self, feed_id):
        handlers.remove_feed(self.uow(), int(feed_id))
        return {"removed": int(feed_id)}

    @rpc
    def get_feed(self, feed_id):
        return handlers.get_feed(self.uow(), int(feed_id))

    @rpc
    def list_feeds(self):
        return handlers.list_feeds(self.uow())

    @rpc
    def poll_now(self, feed_id):
        outcome = handlers.poll_feed(self.uow(), int(feed_id), self.fetcher)
        return schemas.PollOutcomeSchema().dump(outcome)

    @rpc
    def list_articles(self, query=None):
        return handlers.list_articles(self.uow(), schemas.load_list_articles(query or {}))

    @rpc
    def get_article(self, article_id):
        return handlers.get_article(self.uow(), str(article_id))
