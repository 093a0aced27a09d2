-- For the benchmark ceiling: pending segments of job $1 with the ids $2, indexes $3 onwards.
-- The ids are time-ordered and the input is a no-op plan's, as in the segments plans insert.
INSERT INTO job_segments (id, job_id, segment_index, status, input)
SELECT s.id, $1, $3::int + s.n::int - 1, 'pending',
       '{"segment_ms": 0, "fail_rate": 0.0, "fail_segments": []}'::jsonb
FROM unnest($2::uuid[]) WITH ORDINALITY AS s(id, n)
