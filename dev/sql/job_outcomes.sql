-- Jobs $1 with their status, last error and whether the run they ended in was refunded
-- (the chaos checks of jobs that ran out of attempts).
SELECT j.id, j.status::text, j.last_error,
       EXISTS (SELECT 1 FROM credits_history h
               WHERE h.job_id = j.id AND h.job_run = j.run AND h.reason = 'job_refund')
FROM jobs j
WHERE j.id = ANY($1::uuid[])
