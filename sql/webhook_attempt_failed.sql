-- Records that attempt $2 of webhook delivery $1 failed: HTTP status $3 (NULL: no
-- answer), why $4. The next attempt is in $5 seconds, unless that is more than $6 seconds
-- (webhooks.retry_for_seconds) after the event: then the delivery is given up, `failed`.
-- Fenced on the attempt like webhook_delivered.sql. Returns the status it is left in.
UPDATE webhook_deliveries
SET status = CASE
        WHEN now() + $5::float8 * interval '1 second'
             > created_at + $6::float8 * interval '1 second' THEN 'failed'
        ELSE 'pending'
    END,
    run_at = now() + $5::float8 * interval '1 second',
    last_status = $3::int,
    last_error = $4::text,
    locked_by = NULL
WHERE id = $1 AND attempts = $2 AND status = 'pending'
RETURNING status
