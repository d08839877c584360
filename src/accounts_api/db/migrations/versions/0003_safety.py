"""Login throttling counters and per-admin token keys.

- `login_throttle`: failed logins counted per username and per client address in a
  fixed window, shared by every worker and instance.
- `admin_users.token_key`: NULL while the admin's tokens are signed with the service
  secret, as Yeti signs them; revoking an admin's tokens sets a new random key, from which
  its signing key is derived, so every token issued before no longer verifies.

Revision ID: 0003
Revises: 0002
"""

from accounts_api.db.migrate import execute_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE login_throttle (
    scope             varchar(8) NOT NULL CHECK (scope IN ('username', 'address')),
    key               varchar NOT NULL,
    failures          integer NOT NULL CHECK (failures > 0),
    window_started_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX login_throttle_window_idx ON login_throttle (window_started_at);

ALTER TABLE admin_users ADD COLUMN token_key varchar;
"""


def upgrade() -> None:
    execute_script(SCHEMA)


def downgrade() -> None:
    execute_script(
        """
        ALTER TABLE admin_users DROP COLUMN token_key;
        DROP TABLE login_throttle;
        """
    )
