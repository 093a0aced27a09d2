-- Gives segments back at shutdown without burning an attempt: (id, attempt) per element
-- of $1/$2, fenced, back to pending and claimable at once.
UPDATE job_segments s
SET status = 'pending',
    attempts = s.attempts - 1,
    locked_by = NULL,
    lease_expires_at = NULL,
    run_at = now(),
    updated_at = now()
FROM unnest($1::uuid[], $2::int[]) AS r(id, attempt)
WHERE s.id = r.id AND s.attempts = r.attempt AND s.status = 'running'
RETURNING s.job_id
