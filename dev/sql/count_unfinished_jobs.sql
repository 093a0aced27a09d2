-- Jobs not yet in a terminal status ($1 = false), or not completed ($1 = true).
SELECT count(*) FROM jobs
WHERE CASE WHEN $1 THEN status <> 'completed'
           ELSE status NOT IN ('completed', 'failed', 'cancelled') END
