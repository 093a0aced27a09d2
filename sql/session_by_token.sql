-- The live session whose token hashes to $1, with its user: what every authenticated
-- request starts with. last_seen is written at most once a minute per session (the
-- `touched` CTE runs whether or not its rows are read), so busy clients do not turn every
-- read into a write.
WITH found AS (
    SELECT s.id, s.user_id, u.email, coalesce(u.role, 'user') AS role
    FROM sessions s
    JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = $1 AND s.expires_at > now()
), touched AS (
    UPDATE sessions SET last_seen = now()
    WHERE id IN (SELECT id FROM found)
      AND (last_seen IS NULL OR last_seen < now() - interval '1 minute')
)
SELECT id, user_id, email, role FROM found
