"""Two search-service containers on one state database (SQLite, then the real PostgreSQL) and the real broker: on
the embedded backend each holds its own in-memory profile index, and a profile change handled by one is seen by the
other before it matches its next article.

Each event is handed to one chosen container through nameko's entrypoint_hook, so which container handled what is
known rather than left to the broker's round robin.
"""
import json

import pytest
from nameko.testing.services import entrypoint_hook

from search.events import LINKS_SUGGESTED
from search.state import OutboxMessage
from services.kernel.db import make_engine, make_session_factory
from services.migrations import upgrade
from services.search_service import SearchService
from tests.integration.search.test_search_handlers import make_article_event, make_policy_event, occurred

pytestmark = pytest.mark.rabbit


@pytest.fixture
def config(rabbit_config, database_url, tmp_path):
    upgrade("search", database_url)
    return {**rabbit_config, "DATABASES": {"search": database_url}, "OUTBOX_RELAY_INTERVAL": 0.2,
            "SEARCH": {"backend": "embedded", "embedded_path": str(tmp_path / "index.sqlite3")}}


def handle(container, entrypoint, *args):
    with entrypoint_hook(container, entrypoint) as call:
        return call(*args)


def linked_articles(config):
    engine = make_engine(config["DATABASES"]["search"])
    try:
        with make_session_factory(engine)() as session:
            rows = session.query(OutboxMessage).filter_by(event_type=LINKS_SUGGESTED).all()
            return {link["article_id"] for row in rows for link in json.loads(row.payload)["links"]}
    finally:
        engine.dispose()


def test_profile_changes_handled_by_one_container_reach_the_other(config, container_factory):
    first = container_factory(SearchService, config)
    second = container_factory(SearchService, config)
    first.start()
    second.start()
    handle(second, "on_article_ingested", make_article_event(id="early"))  # second has loaded: nothing open yet

    handle(first, "on_policy_published", make_policy_event())
    handle(second, "on_article_ingested", make_article_event(id="after-publish"))
    assert "after-publish" in linked_articles(config)

    keyword_article = dict(title="长护险试点扩围", summary="", text="多地扩大长护险试点范围，失能人员可申请长护险待遇。")
    handle(second, "on_article_ingested", make_article_event(id="before-keyword", **keyword_article))
    handle(first, "set_profile_terms", 7, ["长护险"], {})
    handle(second, "on_article_ingested", make_article_event(id="after-keyword", **keyword_article))
    linked = linked_articles(config)
    assert "before-keyword" not in linked and "after-keyword" in linked

    handle(first, "on_consultation_closed", {"policy_id": 7, "state": "closed", "occurred_at": occurred()})
    handle(second, "on_article_ingested", make_article_event(id="after-close"))
    assert "after-close" not in linked_articles(config)
    assert handle(second, "load_profiles") == 0
