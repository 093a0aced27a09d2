-- Gives job-level steps back at shutdown without burning an attempt: (id, attempt) per
-- element of $2/$3, held by worker $1, claimable again at once.
UPDATE jobs j
SET attempts = j.attempts - 1,
    locked_by = NULL,
    lease_expires_at = NULL,
    run_at = now(),
    updated_at = now()
FROM unnest($2::uuid[], $3::int[]) AS r(id, attempt)
WHERE j.id = r.id AND j.attempts = r.attempt AND j.locked_by = $1 AND j.status = 'running'
RETURNING j.id
