"""Alembic environment shared by all services; the service and its metadata come from the calling Config."""
from alembic import context

from services.kernel.db import make_engine
from services.migrations import metadata_for

config = context.config
service = config.attributes["service"]
target_metadata = metadata_for(service)


def run_migrations_online():
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
