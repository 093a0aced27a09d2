-- A segment attempt failed but may be retried: back to pending, claimable again after
-- $4 seconds (backoff with jitter, computed by the worker; measured on the database
-- clock). Fenced on (id, attempt). Returns the job id when the write happened.
UPDATE job_segments
SET status = 'pending',
    run_at = now() + make_interval(secs => $4),
    last_error = $3,
    locked_by = NULL,
    lease_expires_at = NULL,
    updated_at = now()
WHERE id = $1 AND attempts = $2 AND status = 'running'
RETURNING job_id
