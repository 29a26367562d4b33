"""The `balloon` command line: run, services, migrate, demo, users, feeds, reindex, dead-letters.

Errors are one readable line on stderr with a meaningful exit code, never a traceback.
"""
from __future__ import annotations

import functools
import os
import sys
import time
import warnings

import click

from services.config import config_path, load_config

# eventlet announces its deprecation on import; a command line tool's output is for its user, not for that.
warnings.filterwarnings("ignore", message=r"(?s)\s*Eventlet is deprecated")

EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: a service we need is not there
EXIT_SOFTWARE = 70


def one_line_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (ConnectionError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            click.echo(f"balloon: could not reach the broker or a service ({reason}); is the system running?", err=True)
            sys.exit(EXIT_UNAVAILABLE)
        except (RuntimeError, TimeoutError) as exc:
            click.echo(f"balloon: {exc}", err=True)
            sys.exit(EXIT_UNAVAILABLE)
        except Exception as exc:  # last resort: still one line, with the type for the bug report
            click.echo(f"balloon: unexpected {type(exc).__name__}: {exc}", err=True)
            sys.exit(EXIT_SOFTWARE)

    return wrapper


def _amqp_host_port(config) -> tuple[str, int]:
    from kombu.utils.url import url_to_parts

    parts = url_to_parts(config["AMQP_URI"])
    return parts.hostname or "127.0.0.1", int(parts.port or 5672)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Trial Balloon (决策气球): float draft policies in public and listen before deciding."""


@main.command()
@click.option("--for-tests", is_flag=True, help="Also make sure PostgreSQL and the RabbitMQ management API are up.")
@one_line_errors
def services(for_tests):
    """Make sure the broker (and for tests, PostgreSQL) are running; start installed but stopped ones."""
    from services import machine

    host, port = _amqp_host_port(load_config())
    machine.ensure_rabbitmq_running(host, port)
    if for_tests:
        machine.ensure_rabbitmq_management()
        machine.ensure_postgres_running()
    click.echo("services ready")


@main.command()
@one_line_errors
def migrate():
    """Bring every service's database to the newest schema."""
    from services.migrations import upgrade_all

    upgrade_all(load_config()["DATABASES"])
    click.echo("databases migrated")


@main.command()
@click.option("--demo/--no-demo", default=True, help="Load the demo policies, feeds and news site.")
@click.option("--port", default=None, type=int, help="Gateway port (default from GATEWAY_ADDRESS, 8000).")
@one_line_errors
def run(demo, port):
    """Start the whole system on this machine and print the URLs to open. Ctrl-C stops everything."""
    from services import machine
    from services.migrations import upgrade_all
    from services.runner import Stack

    if port:
        os.environ["GATEWAY_ADDRESS"] = f"0.0.0.0:{port}"
    config = load_config()
    host, amqp_port = _amqp_host_port(config)
    machine.ensure_rabbitmq_running(host, amqp_port)
    upgrade_all(config["DATABASES"])
    gateway_port = int(str(config["WEB_SERVER_ADDRESS"]).rsplit(":", 1)[1])
    base_url = f"http://localhost:{gateway_port}"
    stack = Stack(env={}, config_path=config_path(), log_dir="var/log")
    _stop_on_signals()
    try:
        stack.start()
        click.echo("starting services (logs in var/log/)...")
        stack.wait_healthy(base_url, timeout=90)
        if demo:
            from services.demo import load_demo

            summary = load_demo(base_url, config)
            click.echo(summary)
        _print_urls(base_url, demo)
        while not stack.exited():
            time.sleep(1)
        crashed = stack.exited()
        raise RuntimeError(f"service {next(iter(crashed))} stopped unexpectedly; see var/log/")
    except KeyboardInterrupt:
        click.echo("\nstopping...")
    finally:
        stack.stop()


def _stop_on_signals():
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal, `kill`, a supervisor) stop the children; the services run in
    their own sessions, so nothing else would stop them."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    # SIGINT too: a process started in the background by a non-interactive shell inherits it as ignored
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def _print_urls(base_url, demo):
    click.echo("")
    click.echo("Trial Balloon is running:")
    click.echo(f"  health            {base_url}/healthz")
    click.echo(f"  search API        {base_url}/api/v1/search?q=医保")
    click.echo(f"  API document      {base_url}/api/v1/openapi.json")
    click.echo(f"  policies (API)    {base_url}/api/v1/policies")
    click.echo(f"  staff console     {base_url}/console")
    if demo:
        click.echo(f"  demo news site    {base_url}/demo/   (articles embedding the consultation widget)")
        click.echo("  staff sign-in     demo / demo-password (all roles: change it with `balloon users reset-password demo`)")
    click.echo("Press Ctrl-C to stop.")


@main.command()
@click.option("--timeout", default=3600, show_default=True, help="Give up after this many seconds.")
@one_line_errors
def reindex(timeout):
    """Rebuild the search index from the owning services without downtime (searches keep working)."""
    from nameko.standalone.rpc import ClusterRpcProxy
    from tqdm import tqdm

    with ClusterRpcProxy(load_config(), timeout=30) as cluster:
        status = cluster.search.start_reindex()
        deadline = time.monotonic() + timeout
        with tqdm(unit=" docs", desc="reindexing", disable=None) as progress:
            while status["state"] == "running":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reindex still running after {timeout}s; it goes on in the search service")
                time.sleep(0.5)
                status = cluster.search.reindex_status()
                progress.update(status["documents"] - progress.n)
    if status["state"] != "done":
        raise RuntimeError(f"reindex failed: {status.get('error', status['state'])}")
    click.echo(f"reindexed {status['documents']} documents")


@main.group("dead-letters")
def dead_letters():
    """Event messages whose handler kept failing: list them and replay them after a fix."""


def _dead_letter_queues():
    from urllib.parse import quote, urlparse

    import requests

    api = os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
    vhost = urlparse(load_config()["AMQP_URI"]).path.lstrip("/") or "/"
    response = requests.get(f"{api}/api/queues/{quote(vhost, safe='')}", timeout=10)
    response.raise_for_status()
    return [(q["name"], q.get("messages", 0)) for q in response.json() if q["name"].endswith(".dead")]


@dead_letters.command("list")
@one_line_errors
def dead_letters_list():
    """Dead-letter queues and how many messages each holds (needs the RabbitMQ management API)."""
    queues = _dead_letter_queues()
    if not queues:
        click.echo("no dead-letter queues")
    for name, count in queues:
        click.echo(f"{count:>6}  {name}")


@dead_letters.command("replay")
@click.argument("queue")
@click.option("--limit", default=1000, show_default=True)
@one_line_errors
def dead_letters_replay(queue, limit):
    """Move messages from QUEUE (a `.dead` queue) back to the handler's queue, with a fresh retry count."""
    from kombu import Connection, Queue

    from services.messaging import ATTEMPT_HEADER

    if not queue.endswith(".dead"):
        raise click.BadParameter("name a dead-letter queue (it ends in .dead)")
    target = queue[: -len(".dead")]
    moved = 0
    with Connection(load_config()["AMQP_URI"]) as connection:
        channel = connection.channel()
        producer = connection.Producer(channel)
        dead = Queue(queue, no_declare=True)(channel)
        while moved < limit:
            message = dead.get(no_ack=False)
            if message is None:
                break
            headers = {k: v for k, v in (message.headers or {}).items() if k not in (ATTEMPT_HEADER, "x-death")}
            producer.publish(message.body, exchange="", routing_key=target, headers=headers,
                             content_type=message.content_type, content_encoding=message.content_encoding)
            message.ack()
            moved += 1
    click.echo(f"replayed {moved} messages to {target}")


# --- staff accounts ----------------------------------------------------------------------------------------------

CLI_ACTOR = {"user_id": 0, "username": "balloon-cli", "roles": ["admin"]}


def _consultation_uow():
    """Operators on the server act on the consultation database directly (like createsuperuser), audited as
    `balloon-cli`."""
    from consultation.events import EVENT_SCHEMAS
    from consultation.model import OutboxMessage
    from services.kernel.db import make_engine, make_session_factory
    from services.kernel.outbox import SqlUnitOfWork

    factory = make_session_factory(make_engine(load_config()["DATABASES"]["consultation"]))
    return lambda: SqlUnitOfWork(factory, OutboxMessage, EVENT_SCHEMAS)


def _find_user(uow, username):
    from consultation import accounts, commands

    actor = accounts.Actor.from_dict(CLI_ACTOR)
    for user in accounts.list_users(uow(), commands.ListUsers(), actor=actor):
        if user["username"] == username:
            return user
    raise click.ClickException(f"no user named {username}")


def _domain_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from consultation.exceptions import ConsultationError
        from consultation.i18n import translate_errors

        try:
            return func(*args, **kwargs)
        except ConsultationError as exc:
            detail = getattr(exc, "errors", None)
            text = f"{exc.message}: {translate_errors(detail, 'en')}" if isinstance(detail, dict) else exc.message
            raise click.ClickException(text) from None

    return wrapper


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@main.group()
def users():
    """Staff accounts: add, list, disable, reset-password."""


@users.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(["admin", "policy_officer", "editor", "moderator"]), help="Repeat for several roles.")
@click.option("--display-name", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting.")
@one_line_errors
@_domain_errors
def users_add(username, roles, display_name, password_stdin):
    """Create a staff account with one or more roles."""
    from consultation import accounts, commands

    password = _read_password(password_stdin)
    user = accounts.create_user(
        _consultation_uow()(), commands.CreateUser(username=username, password=password, roles=tuple(roles),
                                                   display_name=display_name or ""),
        actor=accounts.Actor.from_dict(CLI_ACTOR),
    )
    click.echo(f"created {user['username']} ({', '.join(user['roles'])})")


@users.command("list")
@one_line_errors
@_domain_errors
def users_list():
    """List staff accounts and their roles."""
    from consultation import accounts, commands

    for user in accounts.list_users(_consultation_uow()(), commands.ListUsers(),
                                    actor=accounts.Actor.from_dict(CLI_ACTOR)):
        state = "disabled" if user.get("disabled") else "active"
        click.echo(f"{user['username']:<24} {state:<9} {', '.join(user['roles'])}")


@users.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@one_line_errors
@_domain_errors
def users_disable(username, enable):
    """Disable (or --enable) a staff account."""
    from consultation import accounts, commands

    uow = _consultation_uow()
    user = _find_user(uow, username)
    accounts.set_user_disabled(uow(), commands.SetUserDisabled(user_id=user["id"], disabled=not enable),
                               actor=accounts.Actor.from_dict(CLI_ACTOR))
    click.echo(f"{username} {'enabled' if enable else 'disabled'}")


@users.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@one_line_errors
@_domain_errors
def users_reset_password(username, password_stdin):
    """Set a new password (also lifts a lock-out)."""
    from consultation import accounts, commands

    uow = _consultation_uow()
    user = _find_user(uow, username)
    accounts.reset_password(uow(), commands.ResetPassword(user_id=user["id"], new_password=_read_password(password_stdin)),
                            actor=accounts.Actor.from_dict(CLI_ACTOR))
    click.echo(f"password of {username} reset")


if __name__ == "__main__":
    main()
