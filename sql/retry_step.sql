-- A plan or finalize attempt failed but may be retried: the lease is given up and the
-- step is claimable again after $5 seconds. Fenced on (job, attempt, worker, step).
UPDATE jobs
SET locked_by = NULL,
    lease_expires_at = NULL,
    last_error = $4,
    run_at = now() + make_interval(secs => $5),
    updated_at = now()
WHERE id = $1 AND attempts = $2 AND locked_by = $3 AND status = 'running'
RETURNING id
