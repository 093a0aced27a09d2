-- For `octavia-dev bench --suite --scale`: $3 segments with status $2 for each job of $1.
INSERT INTO job_segments (job_id, segment_index, status, input, result, attempts, finished_at)
SELECT j.id, i, $2::text, '{}'::jsonb,
       CASE WHEN $2::text = 'completed' THEN '{"index": 0}'::jsonb END,
       CASE WHEN $2::text = 'completed' THEN 1 ELSE 0 END,
       CASE WHEN $2::text = 'completed' THEN now() END
FROM unnest($1::uuid[]) AS j(id) CROSS JOIN generate_series(0, $3::int - 1) AS i
