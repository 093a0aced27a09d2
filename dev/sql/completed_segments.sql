-- For the chaos checks: every completed segment with what must never change once it
-- completed.
SELECT id, finished_at, result FROM job_segments WHERE status = 'completed'
