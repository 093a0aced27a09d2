-- Opens a session for user $1 (user agent $2, address $3) whose bearer token hashes to $4,
-- valid for $5 seconds.
INSERT INTO sessions (user_id, user_agent, ip_address, token_hash, expires_at, last_seen)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::float8), now())
RETURNING id, expires_at
