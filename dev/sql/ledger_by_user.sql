-- Every user's balance beside the sum of their ledger and its reservations and refunds
-- (the chaos report's per-user ledger check).
SELECT u.email,
       u.credits,
       coalesce(sum(h.delta), 0)::bigint,
       count(*) FILTER (WHERE h.reason = 'job_reserve'),
       count(*) FILTER (WHERE h.reason = 'job_refund')
FROM users u
LEFT JOIN credits_history h ON h.user_id = u.id
GROUP BY u.id, u.email, u.credits
ORDER BY u.email
