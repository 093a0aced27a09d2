-- Deletes webhook endpoint $1 of user $2, and its deliveries with it (ON DELETE CASCADE):
-- nothing more is sent to it, not even a retry in progress. Returns the row when there
-- was one.
DELETE FROM webhook_endpoints WHERE id = $1 AND user_id = $2
RETURNING id
