"""Alembic migrations for each service's own database: one script directory, one version folder per service."""
from __future__ import annotations

import importlib
import pathlib

from alembic import command
from alembic.config import Config

HERE = pathlib.Path(__file__).resolve().parent

# service → module whose `Base.metadata` describes that service's tables
METADATA_MODULES = {
    "consultation": "consultation.model",
    "newsfeed": "newsfeed.model",
    "search": "search.state",
}


def metadata_for(service: str):
    return importlib.import_module(METADATA_MODULES[service]).Base.metadata


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("version_locations", str(HERE / "versions" / service))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["service"] = service
    return config


def upgrade(service: str, url: str, revision: str = "head"):
    command.upgrade(alembic_config(service, url), revision)


def upgrade_all(databases: dict):
    for service in METADATA_MODULES:
        upgrade(service, databases[service])


def make_revision(service: str, url: str, message: str):
    """Developer helper: autogenerate a revision for `service` from its models (against an up-to-date database)."""
    command.revision(alembic_config(service, url), message=message, autogenerate=True, rev_id=None)
