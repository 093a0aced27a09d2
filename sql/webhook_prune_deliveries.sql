-- Deletes up to $2 webhook deliveries delivered or given up whose event is older than $1
-- seconds (webhooks.history_seconds). Returns how many.
WITH old AS (
    SELECT id FROM webhook_deliveries
    WHERE status <> 'pending' AND created_at < now() - $1::float8 * interval '1 second'
    LIMIT $2
), gone AS (
    DELETE FROM webhook_deliveries d USING old WHERE d.id = old.id
    RETURNING 1
)
SELECT count(*) AS pruned FROM gone
