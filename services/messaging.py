"""Messaging that does not lose data (DESIGN.md §3), on top of nameko's primitives.

- `ReliableEventHandler`: a failed handler is retried with back-off through per-delay retry queues (RabbitMQ message
  TTL, dead-lettered back to the handler's queue); after the last attempt the message is rejected into the
  dead-letter exchange `tb.dead-letter`, where it waits in `<queue>.dead` for an operator (`balloon dead-letters`).
  nameko's own EventHandler acks a failed message and forgets it.
- `TimedRpcProxy`: nameko's RpcProxy has no timeout; a caller must never block forever.
"""
from __future__ import annotations

import logging

import eventlet
from kombu import Connection, Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import EventHandler
from nameko.exceptions import RpcTimeout
from nameko.rpc import RpcProxy

log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = Exchange("tb.dead-letter", type="direct", durable=True)
DEFAULT_RETRY_DELAYS = (1, 5, 30, 120)
ATTEMPT_HEADER = "x-tb-attempt"


def dead_letter_queue(queue_name: str) -> Queue:
    return Queue(f"{queue_name}.dead", exchange=DEAD_LETTER_EXCHANGE, routing_key=queue_name, durable=True)


def retry_queue(queue_name: str, delay_s: float) -> Queue:
    milliseconds = int(delay_s * 1000)
    return Queue(
        f"{queue_name}.retry.{milliseconds}ms",
        durable=True,
        queue_arguments={
            "x-message-ttl": milliseconds,
            # default exchange: the expired message goes straight back to the handler's queue
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue_name,
        },
    )


class ReliableEventHandler(EventHandler):
    """An event handler with retry and back-off, then dead-lettering. Handlers must be idempotent."""

    def __init__(self, source_service, event_type, retry_delays=None, **kwargs):
        kwargs.setdefault("reliable_delivery", True)
        super().__init__(source_service, event_type, requeue_on_error=False, **kwargs)
        self.retry_delays = tuple(retry_delays) if retry_delays is not None else None

    def setup(self):
        super().setup()
        name = self.queue.name
        self.queue = Queue(
            name,
            exchange=self.queue.exchange,
            routing_key=self.queue.routing_key,
            durable=True,
            auto_delete=False,
            queue_arguments={"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE.name, "x-dead-letter-routing-key": name},
        )
        delays = self.retry_delays
        if delays is None:
            delays = tuple(self.container.config.get("EVENT_RETRY_DELAYS", DEFAULT_RETRY_DELAYS))
        self.retry_delays = delays
        self._retry_queues = [retry_queue(name, delay) for delay in delays]
        self._publisher = Publisher(self.container.config[AMQP_URI_CONFIG_KEY])
        # Declare the dead-letter queue up front so a rejected message always has somewhere to land.
        with Connection(self.container.config[AMQP_URI_CONFIG_KEY]) as connection:
            dead_letter_queue(name)(connection.default_channel).declare()

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        attempt = int((message.headers or {}).get(ATTEMPT_HEADER, 0)) + 1
        if attempt <= len(self._retry_queues):
            target = self._retry_queues[attempt - 1]
            headers = dict(message.headers or {})
            headers[ATTEMPT_HEADER] = attempt
            log.warning(
                "%s failed (%s), retry %d of %d in %ss",
                self.queue.name, exc_info[0].__name__, attempt, len(self._retry_queues), self.retry_delays[attempt - 1],
            )
            try:
                self._publisher.publish(
                    message.body, exchange="", routing_key=target.name, declare=[target], headers=headers,
                    content_type=message.content_type, content_encoding=message.content_encoding,
                )
            except Exception:
                log.exception("could not schedule a retry; returning the message to its queue")
                self.queue_consumer.requeue_message(message)
                return
            self.queue_consumer.ack_message(message)
            return
        log.error("%s failed %d times (%s); dead-lettered", self.queue.name, attempt, exc_info[0].__name__)
        if message.channel.connection:
            message.reject(requeue=False)


reliable_event_handler = ReliableEventHandler.decorator


class _TimedServiceProxy:
    def __init__(self, proxy, timeout):
        self._proxy = proxy
        self._timeout = timeout

    def __getattr__(self, name):
        method = getattr(self._proxy, name)
        timeout = self._timeout

        def call(*args, **kwargs):
            with eventlet.Timeout(timeout, RpcTimeout(timeout)):
                return method(*args, **kwargs)

        call.__name__ = name
        return call


class TimedRpcProxy(RpcProxy):
    """RpcProxy whose every call raises nameko.exceptions.RpcTimeout after `timeout` seconds (config RPC_TIMEOUT)."""

    def __init__(self, target_service, timeout=None, **kwargs):
        super().__init__(target_service, **kwargs)
        self.timeout = timeout

    def get_dependency(self, worker_ctx):
        timeout = self.timeout or float(self.container.config.get("RPC_TIMEOUT", 10))
        return _TimedServiceProxy(super().get_dependency(worker_ctx), timeout)
