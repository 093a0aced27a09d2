-- A user's account, for GET /api/me.
SELECT id, email, coalesce(role, 'user') AS role, coalesce(credits, 0) AS credits, created_at
FROM users WHERE id = $1
