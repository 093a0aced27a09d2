-- The live API key whose hash is $1, with its user: what a request authenticated by a key
-- starts with. last_used_at is written at most once a minute per key (the `touched` CTE
-- runs whether or not its rows are read), so busy servers do not turn every read into a
-- write.
WITH found AS (
    SELECT k.id, k.user_id, u.email, coalesce(u.role, 'user') AS role
    FROM api_keys k
    JOIN users u ON u.id = k.user_id
    WHERE k.key_hash = $1 AND (k.expires_at IS NULL OR k.expires_at > now())
), touched AS (
    UPDATE api_keys SET last_used_at = now()
    WHERE id IN (SELECT id FROM found)
      AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
)
SELECT id, user_id, email, role FROM found
