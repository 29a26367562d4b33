"""The `balloon` command line: run, services, migrate, demo, users, feeds, reindex, dead-letters.

Errors are one readable line on stderr with a meaningful exit code, never a traceback.
"""
from __future__ import annotations

import functools
import os
import sys
import time

import click

from services.config import config_path, load_config

EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: a service we need is not there
EXIT_SOFTWARE = 70


def one_line_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (RuntimeError, TimeoutError, ConnectionError, OSError) as exc:
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


def _print_urls(base_url, demo):
    click.echo("")
    click.echo("Trial Balloon is running:")
    click.echo(f"  health            {base_url}/healthz")
    click.echo(f"  search API        {base_url}/api/v1/search?q=医保")
    click.echo(f"  API document      {base_url}/api/v1/openapi.json")
    click.echo(f"  policies (API)    {base_url}/api/v1/policies")
    if demo:
        click.echo(f"  demo news site    {base_url}/demo/")
        click.echo("  staff sign-in     demo / demo-password (all roles; change it)")
    click.echo("Press Ctrl-C to stop.")


if __name__ == "__main__":
    main()
