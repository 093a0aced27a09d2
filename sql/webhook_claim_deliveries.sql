-- Leases up to $2 due webhook deliveries to worker $1 for $3 seconds, earliest first, and
-- returns each with what its attempt needs: the event, the endpoint's URL and signing
-- keys (the previous one only while it still signs).
--
-- The lease is run_at moved to its end (see V13__webhooks.sql): a delivery whose worker
-- died becomes due again by itself when the lease ends. `attempts` is the fence of the
-- outcome's write.
WITH due AS MATERIALIZED (
    -- The fence that keeps the planner from locking more rows than the LIMIT; SKIP
    -- LOCKED lets workers claiming at the same time take different rows.
    SELECT id
    FROM webhook_deliveries
    WHERE status = 'pending' AND run_at <= now()
    ORDER BY run_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
SET run_at = now() + $3::float8 * interval '1 second',
    locked_by = $1,
    attempts = d.attempts + 1,
    last_attempt_at = now()
FROM due, webhook_endpoints e
WHERE d.id = due.id AND e.id = d.endpoint_id
RETURNING d.id, d.attempts, d.event, d.data, d.created_at, d.job_id, d.endpoint_id, e.url,
          e.secret,
          CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END
              AS previous_secret
