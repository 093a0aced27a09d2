-- Replaces the signing key of webhook endpoint $1 of user $2 with $3. The key it replaces
-- keeps signing too for $4 seconds (webhooks.rotation_overlap_seconds): deliveries carry
-- both signatures meanwhile, so a receiver that still has the old secret accepts them.
UPDATE webhook_endpoints
SET previous_secret = secret,
    previous_secret_expires_at = now() + $4::float8 * interval '1 second',
    secret = $3,
    secret_rotated_at = now()
WHERE id = $1 AND user_id = $2
RETURNING id, project_id, url, events, created_at, secret_rotated_at
