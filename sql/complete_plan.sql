-- Ends a plan attempt: fenced on (job, attempt, worker), moves the job to its segments
-- step with $4 segments (to finalize directly when there are none) and stores the plan's
-- output under metadata.plan ($5). Segment rows are inserted by insert_segments.sql in the same
-- transaction, after this statement proved the lease is still held.
-- Returns the job's priority and max_attempts, which its segments copy, and whether a
-- cancel was requested meanwhile.
UPDATE jobs
SET step = CASE WHEN $4::int > 0 THEN 'segments'::job_step ELSE 'finalize'::job_step END,
    segments_total = $4::int,
    segments_done = 0,
    progress = 0,
    metadata = coalesce(metadata, '{}'::jsonb) || jsonb_build_object('plan', $5::jsonb),
    attempts = 0,
    locked_by = NULL,
    lease_expires_at = NULL,
    last_error = NULL,
    run_at = now(),
    updated_at = now()
WHERE id = $1 AND attempts = $2 AND locked_by = $3 AND step = 'plan' AND status = 'running'
RETURNING priority, max_attempts, cancel_requested_at IS NOT NULL
