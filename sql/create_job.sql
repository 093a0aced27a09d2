-- Creates one paid job for user $2 in a single statement, its own transaction: the debit
-- of $7 credits, the Idempotency-Key ($9, with request hash $10; NULL for none), the job
-- (id $1, project $3, type $4, input media $5, metadata $6, max_attempts $8), its
-- `job_reserve` ledger row. What POST /api/jobs does per request, in one round trip
-- instead of seven (BEGIN, a lock of the user row, the key, the insert, the debit, the
-- ledger row, COMMIT). It wakes no worker: a NOTIFY here would serialise every creation's
-- commit on PostgreSQL's notification lock; the API wakes them after the commit
-- (octavia::queue::waker).
--
-- The debit goes first: UPDATE takes the user row's lock and re-checks the balance
-- under it, so concurrent creations by one user run one after another from there and can
-- never spend the same credits twice. When it does not cover the price, nothing is
-- written (every other part reads `allowed`) and no row is returned: the caller answers
-- 402. Created, the job is returned with the columns of job_by_id.sql, which is what the
-- answer reports, so the caller reads nothing back.
-- A key already used fails the whole statement with a unique violation
-- (idempotency_keys_pkey), undoing the debit: the caller replays the key's job. The
-- foreign keys of the key and the ledger row to the job are checked at the statement's
-- end, when the job is there.
WITH debited AS (
    UPDATE users SET credits = credits - $7::bigint, updated_at = now()
    WHERE id = $2::uuid AND $7::bigint > 0 AND credits >= $7::bigint
    RETURNING credits
), allowed AS (
    SELECT 1 AS ok WHERE $7 = 0 OR EXISTS (SELECT 1 FROM debited)
), keyed AS (
    INSERT INTO idempotency_keys (user_id, key, request_hash, job_id)
    SELECT $2, $9, $10, $1 FROM allowed WHERE $9::text IS NOT NULL
), inserted AS (
    INSERT INTO jobs (id, user_id, project_id, job_type, status, input_media_id, metadata,
                      cost_credits, priority, run_at, max_attempts, traceparent)
    SELECT $1, $2, $3, $4, 'queued', $5, $6, $7, 0, now(), $8, $11
    FROM allowed
    RETURNING id, user_id, project_id, job_type, status::text, step::text, progress,
              segments_done, segments_total, run, attempts, max_attempts, priority, run_at,
              locked_by, lease_expires_at, last_error, cancel_requested_at, metadata,
              cost_credits, input_media_id, output_media_id, created_at, started_at,
              finished_at, swept_run
), ledger AS (
    INSERT INTO credits_history (user_id, delta, reason, job_id, job_run)
    SELECT $2, -$7, 'job_reserve', id, 1 FROM inserted WHERE $7 > 0
)
SELECT * FROM inserted
