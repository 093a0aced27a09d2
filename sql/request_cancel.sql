-- Asks job $1 to stop: no new segment of it is claimed from now on (the claim skips jobs
-- with cancel_requested_at), running handlers learn it at their next heartbeat. Returns
-- nothing when the job does not exist or already ended.
UPDATE jobs
SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
WHERE id = $1 AND status IN ('pending', 'queued', 'running')
RETURNING id
