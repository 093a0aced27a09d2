-- Takes $2 credits from user $1 if the balance covers them. Returns the new balance, or
-- no row when the balance is short. The row lock taken by UPDATE serialises concurrent
-- debits of one user, and the WHERE is re-checked after the wait, so two requests can
-- never both spend the same credits.
UPDATE users SET credits = credits - $2, updated_at = now()
WHERE id = $1 AND credits >= $2
RETURNING credits
