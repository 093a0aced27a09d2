-- Locks jobs $1 in id order (the order every multi-job statement uses, so they cannot
-- deadlock) before a transaction decides what happens to them. Returns whether each is
-- stopping: its cancel was requested or it already ended.
SELECT id, cancel_requested_at IS NOT NULL OR status NOT IN ('queued', 'running') AS stopping
FROM jobs
WHERE id = ANY($1::uuid[])
ORDER BY id
FOR UPDATE
