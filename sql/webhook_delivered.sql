-- Records that attempt $2 of webhook delivery $1 was accepted with HTTP status $3.
-- Fenced on the attempt: a worker whose lease ended, and whose delivery another worker
-- has taken over, writes nothing (the receiver may see the event twice, with the same
-- webhook-id, which is what it dedupes on).
UPDATE webhook_deliveries
SET status = 'delivered',
    delivered_at = now(),
    last_status = $3,
    last_error = NULL,
    locked_by = NULL
WHERE id = $1 AND attempts = $2 AND status = 'pending'
RETURNING id
