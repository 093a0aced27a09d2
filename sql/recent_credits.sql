-- User $1's newest $2 ledger rows (credits_history_user_id_idx).
SELECT delta, reason, job_id, created_at
FROM credits_history
WHERE user_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2
