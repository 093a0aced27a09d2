-- The API keys of user $1, newest first, expired ones included (with their expiry).
SELECT id, name, prefix, created_at, expires_at, last_used_at
FROM api_keys
WHERE user_id = $1
ORDER BY created_at DESC, id
