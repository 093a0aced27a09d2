-- A plan or finalize attempt ended without success and will not be retried by this
-- worker: the lease is given up (fenced on job, attempt, worker). The caller then fails
-- the job or settles its cancel in the same transaction.
UPDATE jobs
SET locked_by = NULL,
    lease_expires_at = NULL,
    last_error = coalesce($4, last_error),
    updated_at = now()
WHERE id = $1 AND attempts = $2 AND locked_by = $3 AND status = 'running'
RETURNING id
