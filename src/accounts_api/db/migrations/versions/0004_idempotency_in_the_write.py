"""Idempotency keys are claimed, and their answers kept, in the keyed write's own
transaction: a key row always holds an answer, and there is no "committed, answer lost"
state left to record.

Revision ID: 0004
Revises: 0003
"""

from accounts_api.db.migrate import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        -- a claim whose write never committed: nothing happened, a retry runs afresh
        DELETE FROM idempotency_keys WHERE status IS NULL AND committed_at IS NULL;
        -- a write that committed before its answer was kept keeps answering what it did
        UPDATE idempotency_keys
        SET status = 500,
            headers = '{"content-type": "application/vnd.api+json"}',
            body = convert_to(
                '{"errors":[{"title":"Internal Server Error","detail":"The request was'
                || ' carried out, but its answer could not be built; read the resource to see'
                || ' its state.","code":"500","status":"500"}]}', 'UTF8')
        WHERE status IS NULL;
        ALTER TABLE idempotency_keys DROP COLUMN committed_at;
        ALTER TABLE idempotency_keys ALTER COLUMN status SET NOT NULL;
        """
    )


def downgrade() -> None:
    execute_script(
        """
        ALTER TABLE idempotency_keys ALTER COLUMN status DROP NOT NULL;
        ALTER TABLE idempotency_keys ADD COLUMN committed_at timestamptz;
        UPDATE idempotency_keys SET committed_at = created_at;
        """
    )
