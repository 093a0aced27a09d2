-- Takes back up to $1 segments whose lease expired (their worker died or hung): back to
-- pending, or failed when they have no attempt left. Leases are compared on the database
-- clock, never a worker's.
-- Guarded by state: only rows still running with an expired lease are touched, re-checked
-- after locking, so a segment completed a moment ago is never resurrected. SKIP LOCKED:
-- every worker runs the rescuer, and they pass over each other's rows.
-- Reads job_segments_lease_idx.
WITH expired AS MATERIALIZED (
    SELECT ctid
    FROM job_segments
    WHERE status = 'running' AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE job_segments s
SET status = CASE WHEN s.attempts >= s.max_attempts THEN 'failed' ELSE 'pending' END,
    finished_at = CASE WHEN s.attempts >= s.max_attempts THEN now() END,
    last_error = 'lease expired: worker ' || coalesce(s.locked_by, '?') || ' stopped renewing it',
    locked_by = NULL,
    lease_expires_at = NULL,
    run_at = now(),
    updated_at = now()
FROM expired
-- By ctid, as claim_segments.sql explains (5).
WHERE s.ctid = expired.ctid
RETURNING s.id, s.job_id, s.segment_index, s.status
