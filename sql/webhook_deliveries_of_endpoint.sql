-- The latest $2 deliveries to webhook endpoint $1, newest first. A pending delivery whose
-- lease has not ended is being attempted: `delivering`, and its run_at is when another
-- worker takes it over if this attempt never reports.
SELECT id, job_id, event,
       CASE WHEN status = 'pending' AND locked_by IS NOT NULL AND run_at > now()
            THEN 'delivering' ELSE status END AS status,
       attempts, created_at, last_attempt_at,
       CASE WHEN status = 'pending' THEN run_at END AS next_attempt_at,
       last_status, last_error, delivered_at
FROM webhook_deliveries
WHERE endpoint_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2
