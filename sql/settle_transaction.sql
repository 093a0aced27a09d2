-- Marks payment $1 succeeded unless it already is, and returns who bought how many credits
-- exactly when this call made the change: the caller credits them then, and never again.
UPDATE transactions
SET status = 'succeeded', updated_at = now()
WHERE id = $1 AND status <> 'succeeded' AND user_id IS NOT NULL AND credits_bought > 0
RETURNING user_id, credits_bought
