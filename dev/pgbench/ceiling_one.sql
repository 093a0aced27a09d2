-- pgbench: the ceiling of Octavia's claim/complete cycle, one row per statement.
-- Claim: the same shape as sql/claim_segments.sql without the fairness walk.
WITH picked AS MATERIALIZED (
    SELECT id FROM job_segments
    WHERE status = 'pending'
    ORDER BY priority, owner_id, job_id, segment_index
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE job_segments s
SET status = 'running', locked_by = 'ceiling-' || :client_id,
    lease_expires_at = now() + interval '30 seconds', attempts = s.attempts + 1
FROM picked WHERE s.id = picked.id;
-- Complete: what this client claimed, one statement.
UPDATE job_segments
SET status = 'completed', result = '{}'::jsonb, finished_at = now(),
    locked_by = NULL, lease_expires_at = NULL
WHERE status = 'running' AND locked_by = 'ceiling-' || :client_id;
