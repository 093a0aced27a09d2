-- Takes back up to $1 plan/finalize steps whose lease expired: claimable again, or
-- reported as out of attempts (the caller fails those jobs in the same transaction).
-- Same guards as rescue_segments.sql. Reads jobs_lease_idx.
WITH expired AS MATERIALIZED (
    SELECT ctid
    FROM jobs
    WHERE locked_by IS NOT NULL AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs j
SET last_error = 'lease expired: worker ' || j.locked_by || ' stopped renewing it',
    locked_by = NULL,
    lease_expires_at = NULL,
    run_at = now(),
    updated_at = now()
FROM expired
-- By ctid, as claim_segments.sql explains (5).
WHERE j.ctid = expired.ctid
RETURNING j.id, j.step::text, j.attempts >= j.max_attempts AS exhausted,
          j.cancel_requested_at IS NOT NULL AS cancelling
