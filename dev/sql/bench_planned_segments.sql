-- For `octavia-dev bench`: pending segments of job $1 with the ids $2, indexes $3 onwards,
-- each with input $4. The caller gives time-ordered ids and a no-op plan's input, as in
-- the segments plans insert.
INSERT INTO job_segments (id, job_id, segment_index, status, input)
SELECT s.id, $1, $3::int + s.n::int - 1, 'pending', $4::jsonb
FROM unnest($2::uuid[]) WITH ORDINALITY AS s(id, n)
