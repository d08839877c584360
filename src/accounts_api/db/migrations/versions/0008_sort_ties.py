"""Sorted lists page through ties (issue 10): a list sorted by a value many accounts share
(balance, a null external id) orders equal values by id, last, the way of the last sort field
(jsonapi/endpoints.py `list_statements`). Without the id in the index, the planner reads the
index and then sorts each run of equal values: every account with a balance of 0 for the first
page of `sort=balance`. These indexes give that order as they are read, forwards or backwards:
- `(balance, id)` replaces `(balance)`: sort=balance / -balance, and the balance filters;
- `(contractor_id, balance, id)` replaces `(contractor_id, balance)`: filter[contractor.id]
  with sort=balance / -balance, and the foreign key's check;
- `(external_id, id)` is new: sort=external-id. The unique index of external_id stays (it is
  the constraint, and lookups by external id use it), so every write that is not HOT (a change
  of balance) now updates one more index.
Name and uuid need none: unique and never null, they have no ties, and no id is added.
IF NOT EXISTS: on a large database the operator may have built them CONCURRENTLY first
(deploy/indexes-concurrently.sql).

Revision ID: 0008
Revises: 0007
"""

from accounts_api.db.migrate import execute_script

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE INDEX IF NOT EXISTS accounts_balance_id_idx ON accounts (balance, id);
        DROP INDEX accounts_balance_idx;
        CREATE INDEX IF NOT EXISTS accounts_contractor_balance_id_idx
            ON accounts (contractor_id, balance, id);
        DROP INDEX accounts_contractor_balance_idx;
        CREATE INDEX IF NOT EXISTS accounts_external_id_id_idx ON accounts (external_id, id);
        """
    )


def downgrade() -> None:
    execute_script(
        """
        DROP INDEX accounts_external_id_id_idx;
        CREATE INDEX accounts_contractor_balance_idx ON accounts (contractor_id, balance);
        DROP INDEX accounts_contractor_balance_id_idx;
        CREATE INDEX accounts_balance_idx ON accounts (balance);
        DROP INDEX accounts_balance_id_idx;
        """
    )
