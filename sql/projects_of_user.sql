-- User $1's projects, newest first, at most $2 (projects_user_id_idx).
SELECT id, name, description, created_at
FROM projects
WHERE user_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2
