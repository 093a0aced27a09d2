-- A segment attempt ended for good without a result: $3 is 'failed' (out of attempts or
-- a fatal error) or 'cancelled' (its job is being cancelled or has failed). Fenced on
-- (id, attempt). Returns the job id and segment index when the write happened.
UPDATE job_segments
SET status = $3,
    last_error = $4,
    finished_at = now(),
    locked_by = NULL,
    lease_expires_at = NULL,
    updated_at = now()
WHERE id = $1 AND attempts = $2 AND status = 'running'
RETURNING job_id, segment_index
