-- Fails jobs ($1) with the error $2, unless they already ended. Returns (id, run) of each
-- job failed, to refund. The step stays, so a retry resumes where the job stopped.
UPDATE jobs
SET status = 'failed',
    last_error = $2,
    finished_at = now(),
    locked_by = NULL,
    lease_expires_at = NULL,
    updated_at = now()
WHERE id = ANY($1::uuid[]) AND status IN ('pending', 'queued', 'running')
RETURNING id, run
