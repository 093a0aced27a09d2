-- Ends a finalize attempt: fenced on (job, attempt, worker), the job is completed with its
-- output media ($4, may be NULL) and progress 100.
UPDATE jobs
SET status = 'completed',
    step = 'done',
    progress = 100,
    output_media_id = $4,
    finished_at = now(),
    locked_by = NULL,
    lease_expires_at = NULL,
    last_error = NULL,
    updated_at = now()
WHERE id = $1 AND attempts = $2 AND locked_by = $3 AND step = 'finalize' AND status = 'running'
RETURNING id
