-- Ledger rows, one per element of the parallel arrays. credits_history_job_run_key makes
-- a second reservation or refund of one job run fail with a unique violation.
INSERT INTO credits_history (user_id, delta, reason, job_id, job_run)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::uuid[], $5::int[])
