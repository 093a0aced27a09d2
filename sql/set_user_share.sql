-- Sets the fair share (see claim_segments.sql) of the user with email $1, or of every user
-- of role $2: share_weight to $3 and max_running_segments to $4 (0: no ceiling), each
-- unchanged when NULL. Returns (email, share_weight, max_running_segments) per user changed.
UPDATE users
SET share_weight = coalesce($3::int, share_weight),
    max_running_segments = CASE WHEN $4::int IS NULL THEN max_running_segments
                                WHEN $4::int = 0 THEN NULL
                                ELSE $4::int END,
    updated_at = now()
WHERE ($1::text IS NOT NULL AND lower(email) = lower(btrim($1::text)))
   OR ($2::text IS NOT NULL AND coalesce(role, 'user') = $2::text)
RETURNING email, share_weight, max_running_segments
