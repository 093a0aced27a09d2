-- The webhook endpoints of user $1, newest first, without their secrets.
SELECT id, project_id, url, events, created_at, secret_rotated_at
FROM webhook_endpoints
WHERE user_id = $1
ORDER BY created_at DESC, id
