-- For the benchmark ceiling: $2 pending segments of job $1.
INSERT INTO job_segments (job_id, segment_index, status, input)
SELECT $1, i, 'pending', '{}'::jsonb FROM generate_series(0, $2 - 1) AS i
