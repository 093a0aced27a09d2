-- A user by email (compared case-insensitively, as people type them).
SELECT id, email, password_hash, coalesce(role, 'user') AS role, coalesce(credits, 0) AS credits
FROM users WHERE lower(email) = lower($1)
