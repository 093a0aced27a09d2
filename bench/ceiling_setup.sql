-- The ceiling's data: one running job with :n pending segments, in Octavia's own schema
-- (migrated before this runs), so the ceiling scans the same indexes the queue does.
INSERT INTO jobs (id, job_type, status, step, segments_total)
VALUES ('00000000-0000-7000-8000-000000000001', 'noop', 'running', 'segments', :n);
INSERT INTO job_segments (job_id, segment_index, status, input)
SELECT '00000000-0000-7000-8000-000000000001', i, 'pending', '{}'::jsonb
FROM generate_series(0, :n - 1) AS i;
VACUUM ANALYZE;
