-- Adds $2 credits to user $1 (grants, purchases). Returns the new balance.
UPDATE users SET credits = credits + $2, updated_at = now()
WHERE id = $1
RETURNING credits
