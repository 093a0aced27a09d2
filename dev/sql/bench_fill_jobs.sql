-- For `octavia-dev bench --suite --scale`: $4 noop jobs at status $1 and step $2 with $3
-- segments each (all done when completed). Returns their ids.
INSERT INTO jobs (job_type, status, step, segments_total, segments_done, progress, finished_at)
SELECT 'noop', $1::text::job_status, $2::text::job_step, $3::int,
       CASE WHEN $1::text = 'completed' THEN $3::int ELSE 0 END,
       CASE WHEN $1::text = 'completed' THEN 100 ELSE 0 END,
       CASE WHEN $1::text = 'completed' THEN now() END
FROM generate_series(1, $4::int)
RETURNING id
