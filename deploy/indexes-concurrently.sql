-- The indexes of migrations 0006 and 0008, built without blocking writes: run this with psql
-- on a large database before `accounts-api migrate` takes it past 0005 (docs/deploy.md,
-- "Upgrading a large database"). Each CREATE INDEX CONCURRENTLY runs on its own, outside a
-- transaction (psql's default), and waits for the transactions in progress; the migrations
-- then find every index built (IF NOT EXISTS) and only swap names. A build that failed leaves
-- an INVALID index: drop it and run this again.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
-- 0006
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_name_trgm_idx
    ON accounts USING gin (name gin_trgm_ops);
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_contractor_balance_idx
    ON accounts (contractor_id, balance);
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_balance_idx ON accounts (balance);
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_external_id_numeric_idx
    ON accounts ((external_id::numeric));
CREATE INDEX CONCURRENTLY IF NOT EXISTS contractors_name_trgm_idx
    ON contractors USING gin (name gin_trgm_ops);
-- 0008 (it drops the two 0006 indexes these replace)
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_balance_id_idx ON accounts (balance, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_contractor_balance_id_idx
    ON accounts (contractor_id, balance, id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_external_id_id_idx
    ON accounts (external_id, id);
