-- A user by email (compared case-insensitively, as people type them).
SELECT id, email, password_hash, coalesce(role, 'user'), coalesce(credits, 0)
FROM users WHERE lower(email) = lower($1)
