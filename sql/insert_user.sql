-- Creates a user. The email is unique; the caller maps a unique violation to a clear error.
INSERT INTO users (email, password_hash, role, is_verified)
VALUES ($1, $2, $3, true)
RETURNING id
