-- Webhook endpoint $1 if it is user $2's: someone else's is "not found", like one that
-- does not exist.
SELECT id FROM webhook_endpoints WHERE id = $1 AND user_id = $2
