"""Developer tool: rebuild each service's single initial revision from its current models.

Usable only while no database in production has been migrated (the project has not shipped yet):
    .venv/bin/python -m services.migrations.regenerate
"""
import pathlib
import tempfile

from alembic import command

from services.migrations import HERE, METADATA_MODULES, alembic_config


def main():
    for service in METADATA_MODULES:
        folder = HERE / "versions" / service
        for old in folder.glob("*.py"):
            old.unlink()
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{pathlib.Path(tmp) / 'empty.sqlite3'}"
            command.revision(alembic_config(service, url), message=f"{service} schema", autogenerate=True,
                             rev_id=f"{service}_0001")
        print(f"regenerated {service}")


if __name__ == "__main__":
    main()
