"""Versioned, transactional schema migrations: Alembic, with raw SQL revisions in
`migrations/versions`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

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


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    """The newest revision: what `upgrade` brings a database to."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None before the first migration."""
    engine = sqlalchemy.create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            revision: str | None = MigrationContext.configure(connection).get_current_revision()
            return revision
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> list[str]:
    """Applies the migrations the database lacks; returns them, oldest first."""
    before = current_revision(database_url)
    command.upgrade(alembic_config(database_url), revision)
    after = current_revision(database_url)
    if after is None or after == before:
        return []
    applied = _scripts().iterate_revisions(after, before or "base")
    return [script.revision for script in reversed(list(applied))]


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
