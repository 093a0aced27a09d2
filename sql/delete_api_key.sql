-- Revokes API key $1 of user $2: the next request with it is refused. Returns the row
-- when there was one.
DELETE FROM api_keys WHERE id = $1 AND user_id = $2
RETURNING id
