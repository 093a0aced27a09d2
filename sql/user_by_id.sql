-- A user's account, for GET /api/me.
SELECT id, email, coalesce(role, 'user'), coalesce(credits, 0), created_at
FROM users WHERE id = $1
