-- The segments of job $1 that did not complete (failed, or cancelled before they ran)
-- become pending with fresh attempts. Completed segments keep their results and are
-- never run again.
UPDATE job_segments
SET status = 'pending',
    attempts = 0,
    last_error = NULL,
    finished_at = NULL,
    run_at = now(),
    updated_at = now()
WHERE job_id = $1 AND status IN ('failed', 'cancelled')
