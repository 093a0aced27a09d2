-- A new API key of user $1 named $2, shown as $3 (its first characters), hashing to $4,
-- valid until $5 (NULL: until deleted).
INSERT INTO api_keys (user_id, name, prefix, key_hash, expires_at)
VALUES ($1, $2, $3, $4, $5::timestamptz)
RETURNING id, name, prefix, created_at, expires_at, last_used_at
