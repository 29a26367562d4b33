"""The consultation service on PostgreSQL when its database connections are terminated (pg_terminate_backend, as an
operator or a server restart does): an idle connection is replaced unnoticed, a submission that loses its connection
before committing runs again and is stored once, and one that loses it while committing is answered as unavailable,
never acknowledged without being stored."""
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import create_engine, event, func, select

from consultation import events as ev
from consultation.model import Comment, CommentTransition, OutboxMessage, SubmissionAttempt
from services.consultation_service import ConsultationService
from services.dependencies import UnitOfWork
from services.gateway.errors import register_remote_exceptions
from services.kernel.db import DatabaseUnavailable
from services.migrations import upgrade
from tests.integration.conftest import _drop_postgres_database, _fresh_postgres_database
from tests.integration.consultation.test_service_consultation import (
    EventRecorder,
    open_policy,
    received,
    submit,
    wait_for_events,
)
from tests.integration.services.test_unit_of_work import terminate_backends

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres]

register_remote_exceptions()


@pytest.fixture
def postgres_url(postgres_admin_url):
    admin, name, url = _fresh_postgres_database(postgres_admin_url)
    try:
        yield url
    finally:
        _drop_postgres_database(admin, name)


@pytest.fixture
def service(container_factory, rabbit_config, postgres_url):
    """The running service's database engine and an RPC proxy to it."""
    upgrade("consultation", postgres_url)
    config = {**rabbit_config, "DATABASES": {"consultation": postgres_url}, "OUTBOX_RELAY_INTERVAL": 0.2,
              "CONSULTATION": {"hash_secret": "integration-test-secret"}}
    received.clear()
    container_factory(EventRecorder, config).start()
    container = container_factory(ConsultationService, config)
    container.start()
    engine = next(extension for extension in container.extensions if isinstance(extension, UnitOfWork)).engine
    with ServiceRpcProxy("consultation", config, timeout=15) as proxy:
        yield engine, proxy


def stored(url, statement):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(statement).all()
    finally:
        engine.dispose()


def comments_with_text(url, text):
    return stored(url, select(Comment.id, Comment.idempotency_key).where(Comment.original_text == text))


def terminate_own_backend_once(engine, admin_url, when):
    """Terminate the server process of the connection that is about to run a statement matching `when`, once."""
    fired = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if not fired and when(statement):
            fired.append(statement)
            terminate_backends(admin_url, engine.url.database)

    event.listen(engine, "before_cursor_execute", before)
    return fired


def test_connections_the_server_terminated_while_idle_are_replaced_without_a_failed_call(service, postgres_url,
                                                                                         postgres_admin_url):
    engine, consultation = service
    policy_id = open_policy(consultation)["policy_id"]
    first = submit(consultation, policy_id, text="第一条意见：建议增加夜间泊位。")
    assert terminate_backends(postgres_admin_url, engine.url.database) >= 1
    second = submit(consultation, policy_id, text="第二条意见：建议公开收费标准。")
    assert second["comment_id"] != first["comment_id"]
    assert consultation.get_policy({"policy_id": policy_id})["policy_id"] == policy_id
    # the relay, on the same pool, still publishes both events
    wait_for_events(ev.COMMENT_SUBMITTED, count=2, policy_id=policy_id)
    assert len(comments_with_text(postgres_url, "第二条意见：建议公开收费标准。")) == 1


def test_a_submission_that_loses_its_connection_before_committing_runs_again_and_is_stored_once(
        service, postgres_url, postgres_admin_url):
    engine, consultation = service
    policy_id = open_policy(consultation)["policy_id"]
    # the statement that writes the comment, its transition and its event, just before COMMIT
    fired = terminate_own_backend_once(engine, postgres_admin_url, lambda statement: "INSERT INTO outbox" in statement
                                       and "INSERT INTO comment " in statement)
    text = "建议地下车库夜间向居民开放。"
    receipt = submit(consultation, policy_id, text=text, idempotency_key="lost-before-commit")
    assert fired, "the connection was never terminated: the test did not exercise the retry"
    assert comments_with_text(postgres_url, text) == [(receipt["comment_id"], "lost-before-commit")]
    comment_id = receipt["comment_id"]
    assert stored(postgres_url, select(func.count()).select_from(CommentTransition)
                  .where(CommentTransition.comment_id == comment_id)) == [(1,)]
    assert stored(postgres_url, select(func.count()).select_from(OutboxMessage)
                  .where(OutboxMessage.payload.contains(f'"comment_id": {comment_id},'))) == [(1,)]
    # the rate limit counted the submission once per subject (voter token and address), not once per run
    assert stored(postgres_url, select(func.count()).select_from(SubmissionAttempt)) == [(2,)]
    wait_for_events(ev.COMMENT_SUBMITTED, comment_id=comment_id)


def test_a_submission_that_loses_its_connection_while_committing_is_unavailable_and_a_retry_stores_it_once(
        service, postgres_url, postgres_admin_url):
    engine, consultation = service
    policy_id = open_policy(consultation)["policy_id"]
    fired = []

    def note_submission(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO comment " in statement:
            conn.info["writes_comment"] = True

    def terminate_before_commit(conn):
        if conn.info.pop("writes_comment", False) and not fired:
            fired.append(True)
            terminate_backends(postgres_admin_url, engine.url.database)

    event.listen(engine, "before_cursor_execute", note_submission)
    event.listen(engine, "commit", terminate_before_commit)
    text = "建议延长公共停车场的免费时长。"
    with pytest.raises(DatabaseUnavailable):
        submit(consultation, policy_id, text=text, idempotency_key="lost-while-committing")
    assert fired
    assert comments_with_text(postgres_url, text) == []  # the COMMIT never reached the server: nothing acknowledged
    # the client's retry with the same key is a normal submission (a stored one would have returned its receipt)
    receipt = submit(consultation, policy_id, text=text, idempotency_key="lost-while-committing")
    again = submit(consultation, policy_id, text=text, idempotency_key="lost-while-committing")
    assert again["comment_id"] == receipt["comment_id"]
    assert comments_with_text(postgres_url, text) == [(receipt["comment_id"], "lost-while-committing")]
