"""Admin changes announced (issue 10): every statement that changes `admin_users` (a token
revocation, a password, an allow-list, a deletion, by the CLI or by hand in SQL) sends
`NOTIFY accounts_api_admin_users` in its own transaction, so each process's cache of admins
(auth/admin_cache.py) drops what it holds the moment the change commits.

Revision ID: 0007
Revises: 0005 (issue 10 was written beside 0006, issue 10's scale work: at the merge this
revises 0006)
"""

from accounts_api.db.migrate import execute_script

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE FUNCTION admin_users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('accounts_api_admin_users', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER admin_users_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON admin_users
    FOR EACH STATEMENT EXECUTE FUNCTION admin_users_changed();
"""


def upgrade() -> None:
    execute_script(SCHEMA)


def downgrade() -> None:
    execute_script(
        "DROP TRIGGER admin_users_changed ON admin_users; DROP FUNCTION admin_users_changed()"
    )
