-- Claims up to $2 job-level steps (plan or finalize) for worker $1, leased for $4 seconds.
-- $3: job types to claim, NULL for all.
--
-- MATERIALIZED fences the LIMIT: the rows to lock are chosen once, so the planner cannot
-- turn the subquery into a join that locks more rows than asked. SKIP LOCKED lets
-- concurrent claimers pass over each other's rows instead of queueing behind them; the
-- row is re-checked after locking, so a step another worker just took is skipped.
-- Reads jobs_claim_idx, whose predicate is this WHERE clause.
WITH picked AS MATERIALIZED (
    SELECT ctid
    FROM jobs
    WHERE locked_by IS NULL
      AND step IN ('plan', 'finalize')
      AND status IN ('queued', 'running')
      AND run_at <= now()
      AND ($3::text[] IS NULL OR job_type = ANY($3::text[]))
    ORDER BY priority, run_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs j
SET status = 'running',
    locked_by = $1,
    lease_expires_at = now() + make_interval(secs => $4),
    attempts = j.attempts + 1,
    started_at = coalesce(j.started_at, now()),
    updated_at = now()
FROM picked
-- By ctid, as claim_segments.sql explains (5).
WHERE j.ctid = picked.ctid
RETURNING j.id, j.job_type, j.user_id, j.project_id, j.input_media_id, j.metadata, j.run,
          j.segments_total, j.priority, j.step::text, j.attempts, j.max_attempts, j.traceparent
