-- A new webhook endpoint of user $1: jobs of project $2 (NULL: all of theirs), sent to
-- url $3, the events $4, signed with key $5. Inserts nothing when the user already has
-- $6 endpoints: each one is a row written at every event of theirs, so their number is
-- bounded. (Two concurrent requests may both pass the count: the bound is not exact.)
INSERT INTO webhook_endpoints (user_id, project_id, url, events, secret)
SELECT $1::uuid, $2::uuid, $3::text, $4::text[], $5::bytea
WHERE (SELECT count(*) FROM webhook_endpoints WHERE user_id = $1::uuid) < $6::bigint
RETURNING id, project_id, url, events, created_at, secret_rotated_at
