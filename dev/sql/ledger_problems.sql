-- Violations of the credit promises, one message per row: a balance that differs from the
-- sum of its ledger or is negative; a job run with more than one reservation or refund,
-- or a refund without a reservation; a refund of a job that did not end failed or
-- cancelled in that run.
SELECT format('user %s: balance %s, ledger sum %s', u.email, u.credits, coalesce(l.total, 0))
FROM users u
LEFT JOIN (SELECT user_id, sum(delta) AS total FROM credits_history GROUP BY user_id) l
       ON l.user_id = u.id
WHERE u.credits IS DISTINCT FROM coalesce(l.total, 0) OR u.credits < 0
UNION ALL
SELECT format('job %s run %s: %s reservations, %s refunds', job_id, job_run,
              count(*) FILTER (WHERE reason = 'job_reserve'),
              count(*) FILTER (WHERE reason = 'job_refund'))
FROM credits_history
WHERE job_id IS NOT NULL
GROUP BY job_id, job_run
HAVING count(*) FILTER (WHERE reason = 'job_reserve') > 1
    OR count(*) FILTER (WHERE reason = 'job_refund') > 1
    OR count(*) FILTER (WHERE reason = 'job_refund') > count(*) FILTER (WHERE reason = 'job_reserve')
UNION ALL
SELECT format('job %s run %s was refunded but is %s', h.job_id, h.job_run, j.status)
FROM credits_history h JOIN jobs j ON j.id = h.job_id
WHERE h.reason = 'job_refund' AND h.job_run = j.run AND j.status NOT IN ('failed', 'cancelled')
