"""The search service on the real broker: events wait out a search backend outage (retries with back-off, then the
dead-letter queue) and the index catches up when the backend returns.

No Elasticsearch server can run on this machine, so the outage is played by a wrapper around the real embedded
backend that refuses writes while `OUTAGE` is set: the only stand-in in this module."""
import time

import pytest
from click.testing import CliRunner
from kombu import Connection
from nameko.standalone.events import event_dispatcher

from search.backends.base import SearchBackendUnavailable
from search.backends.embedded import EmbeddedSearchBackend
from search.state import Base
from services.cli import main as balloon
from services.kernel.db import make_engine
from services.search_service import SearchIndex, SearchService
from tests.integration.search.test_search_handlers import make_policy_event

pytestmark = pytest.mark.rabbit

OUTAGE = {"down": False}
QUEUE = "evt-consultation-policy_published--search.on_policy_published"


class BackendWithOutage(EmbeddedSearchBackend):
    def upsert(self, docs):
        if OUTAGE["down"]:
            raise SearchBackendUnavailable("search cluster unreachable")
        return super().upsert(docs)


class IndexWithOutage(SearchIndex):
    def setup(self):
        self.settings = dict(self.container.config["SEARCH"])
        self.backend = BackendWithOutage(self.settings["embedded_path"])
        self.backend.ensure_schema()


class SearchServiceUnderOutage(SearchService):
    backend = IndexWithOutage()


@pytest.fixture
def config(rabbit_config, tmp_path):
    OUTAGE["down"] = False
    url = f"sqlite:///{tmp_path / 'search-state.sqlite3'}"
    Base.metadata.create_all(make_engine(url))
    return {**rabbit_config, "DATABASES": {"search": url}, "OUTBOX_RELAY_INTERVAL": 0.2,
            "EVENT_RETRY_DELAYS": [0.3, 0.3, 0.3],
            "SEARCH": {"backend": "embedded", "embedded_path": str(tmp_path / "index.sqlite3")}}


def indexed(tmp_path) -> int:
    backend = EmbeddedSearchBackend(tmp_path / "index.sqlite3")
    from search.queries import parse_search_params

    return backend.search(parse_search_params({"q": "医保", "doc_type": "policy"})).total


def wait_for(predicate, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def dead_letters(config) -> int:
    with Connection(config["AMQP_URI"]) as connection:
        return connection.channel().queue_declare(f"{QUEUE}.dead", passive=True).message_count


def test_policy_event_during_a_short_outage_is_retried_until_indexed(config, container_factory, tmp_path):
    container_factory(SearchServiceUnderOutage, config).start()
    OUTAGE["down"] = True
    event_dispatcher(config)("consultation", "policy_published", make_policy_event())
    time.sleep(0.5)
    assert indexed(tmp_path) == 0
    OUTAGE["down"] = False
    assert wait_for(lambda: indexed(tmp_path) == 1)
    assert dead_letters(config) == 0


def test_event_outlasting_every_retry_waits_in_the_dead_letter_queue_and_replays(config, container_factory, tmp_path,
                                                                                  monkeypatch):
    container_factory(SearchServiceUnderOutage, config).start()
    OUTAGE["down"] = True
    event_dispatcher(config)("consultation", "policy_published", make_policy_event())
    assert wait_for(lambda: dead_letters(config) == 1)
    assert indexed(tmp_path) == 0
    OUTAGE["down"] = False
    monkeypatch.setenv("AMQP_URI", config["AMQP_URI"])
    result = CliRunner().invoke(balloon, ["dead-letters", "replay", f"{QUEUE}.dead"])
    assert result.exit_code == 0, result.output
    assert "replayed 1 messages" in result.output
    assert wait_for(lambda: indexed(tmp_path) == 1)
    assert dead_letters(config) == 0
