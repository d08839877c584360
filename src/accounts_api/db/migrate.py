"""Versioned, transactional schema migrations: Alembic, with raw SQL revisions in
`migrations/versions`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def sqlalchemy_url(database_url: str) -> str:
    """Migrations run over psycopg: its simple-query protocol takes whole SQL scripts."""
    scheme, _, rest = database_url.partition("://")
    if scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {scheme}://")
    return "postgresql+psycopg://" + rest


def execute_script(sql: str) -> None:
    """Run a whole SQL script inside the migration's transaction, as written: through the
    driver itself, so that no layer reads `%` or `:name` in it as a placeholder."""
    from alembic import op

    driver = op.get_bind().connection.driver_connection
    assert driver is not None
    driver.execute(sql)


def head_revision() -> str:
    """The newest revision: what `upgrade` brings a database to."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
