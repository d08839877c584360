"""Ten million accounts (issue 10, item 4): indexes for the filters and sorts lists use, and
an exact count of accounts that reads no account.

Indexes: each one serves a query the API makes (jsonapi/filters.py writes the predicates; the
expressions here are the ones it generates, so the planner can match them). Every index on
accounts is written by a change of balance too: `balance` is indexed now, so such an update is
no longer HOT. That is why the low-cardinality settings (vat, min/max balance, capacities,
invoice period, time zone, currency) are not indexed: a filter on them is rarely selective and
a sort by them is a rare full listing (tests/db/test_indexes.py lists which are left out).

The count: `row_counts` holds, per counted table, 16 slots whose sum is the number of rows.
Statement-level triggers with transition tables add each INSERT's and DELETE's rows (one
update per statement, whatever its size: a COPY of a million rows is one) to the slot of the
backend that runs it (`pg_backend_pid() % 16`). The slot's row lock is held until commit, so:
- concurrent creates on different connections mostly take different slots and do not wait for
  each other; two that share a slot take turns, as they would on one counter row;
- one transaction always uses one slot, so two counting transactions cannot deadlock on slots;
- a rollback undoes the slot's update with the rows; the sum, read in one snapshot, is
  exactly what `count(*)` reads in that snapshot.
TRUNCATE sets the slots to 0.

Revision ID: 0006
Revises: 0005
"""

from accounts_api.db.migrate import execute_script

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SLOTS = 16

# IF NOT EXISTS: on a large database the operator may have built them CONCURRENTLY first
# (deploy/indexes-concurrently.sql); a plain CREATE INDEX blocks writes to the table meanwhile
SCHEMA = f"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- filter[name_cont], name_start, name_end, name_cont_any: `a.name ILIKE $n` (ANY for cont_any)
CREATE INDEX IF NOT EXISTS accounts_name_trgm_idx ON accounts USING gin (name gin_trgm_ops);
-- filter[contractor.id], alone or with sort=balance / -balance, which the index then orders;
-- also the foreign key's check when a contractor is deleted: it replaces the index of
-- contractor_id alone
CREATE INDEX IF NOT EXISTS accounts_contractor_balance_idx ON accounts (contractor_id, balance);
DROP INDEX accounts_contractor_id_idx;
-- sort=balance / -balance; filter[balance_lt], balance_gt, ... (`a.balance::numeric` is the
-- column itself: it is numeric already)
CREATE INDEX IF NOT EXISTS accounts_balance_idx ON accounts (balance);
-- filter[external_id_eq], _in, _gt, ...: the number family compares `a.external_id::numeric`,
-- which the unique index on external_id (sort=external_id, lookups by it) cannot serve
CREATE INDEX IF NOT EXISTS accounts_external_id_numeric_idx ON accounts ((external_id::numeric));
-- contractors' filter[name_cont], name_start, name_end, name_cont_any
CREATE INDEX IF NOT EXISTS contractors_name_trgm_idx ON contractors USING gin (name gin_trgm_ops);

CREATE TABLE row_counts (
    table_name varchar NOT NULL,
    slot       smallint NOT NULL CHECK (slot >= 0 AND slot < {SLOTS}),
    count      bigint NOT NULL,
    PRIMARY KEY (table_name, slot)
);

CREATE FUNCTION row_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE row_counts SET count = 0 WHERE table_name = TG_TABLE_NAME;
        RETURN NULL;
    END IF;
    SELECT count(*) INTO delta FROM changed_rows;
    IF delta = 0 THEN
        RETURN NULL;  -- a statement that changed nothing takes no slot
    END IF;
    UPDATE row_counts
    SET count = count + CASE TG_OP WHEN 'DELETE' THEN -delta ELSE delta END
    WHERE table_name = TG_TABLE_NAME AND slot = pg_backend_pid() % {SLOTS};
    RETURN NULL;
END
$$;

-- no write may come between the count and the triggers
LOCK TABLE accounts IN SHARE ROW EXCLUSIVE MODE;
INSERT INTO row_counts (table_name, slot, count)
SELECT 'accounts', slot, CASE WHEN slot = 0 THEN (SELECT count(*) FROM accounts) ELSE 0 END
FROM generate_series(0, {SLOTS - 1}) slot;
CREATE TRIGGER accounts_counted_insert AFTER INSERT ON accounts
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION row_counts_changed();
CREATE TRIGGER accounts_counted_delete AFTER DELETE ON accounts
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION row_counts_changed();
CREATE TRIGGER accounts_counted_truncate AFTER TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION row_counts_changed();
"""


def upgrade() -> None:
    execute_script(SCHEMA)


def downgrade() -> None:
    # pg_trgm stays: other objects in the database may have come to use it
    execute_script(
        """
        DROP TRIGGER accounts_counted_truncate ON accounts;
        DROP TRIGGER accounts_counted_delete ON accounts;
        DROP TRIGGER accounts_counted_insert ON accounts;
        DROP FUNCTION row_counts_changed();
        DROP TABLE row_counts;
        DROP INDEX contractors_name_trgm_idx;
        DROP INDEX accounts_external_id_numeric_idx;
        DROP INDEX accounts_balance_idx;
        CREATE INDEX accounts_contractor_id_idx ON accounts (contractor_id);
        DROP INDEX accounts_contractor_balance_idx;
        DROP INDEX accounts_name_trgm_idx;
        """
    )
