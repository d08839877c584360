"""Alembic environment: the raw-SQL revisions run in one transaction."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from accounts_api.db.migrate import sqlalchemy_url

engine = create_engine(
    sqlalchemy_url(context.config.attributes["database_url"]), poolclass=pool.NullPool
)
try:
    with engine.connect() as connection:
        context.configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
