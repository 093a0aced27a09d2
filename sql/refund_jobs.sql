-- Refunds the reservation of each (job, run) in the arrays, exactly once: the refund row
-- is inserted only if that run has none yet (credits_history_job_run_key), and only the
-- refunds actually inserted are added back to the balances. Runs with no reservation
-- (free jobs) refund nothing. Returns the credits given back per user.
WITH refund AS (
    INSERT INTO credits_history (user_id, delta, reason, job_id, job_run)
    SELECT r.user_id, -r.delta, 'job_refund', r.job_id, r.job_run
    FROM credits_history r
    JOIN unnest($1::uuid[], $2::int[]) AS t(job_id, run)
      ON r.job_id = t.job_id AND r.job_run = t.run
    WHERE r.reason = 'job_reserve' AND r.delta <> 0
    ON CONFLICT (job_id, job_run, reason) WHERE job_id IS NOT NULL DO NOTHING
    RETURNING user_id, delta
), per_user AS (
    SELECT user_id, sum(delta)::bigint AS total FROM refund GROUP BY user_id
)
UPDATE users u SET credits = u.credits + p.total, updated_at = now()
FROM per_user p
WHERE u.id = p.user_id
RETURNING u.id, p.total
