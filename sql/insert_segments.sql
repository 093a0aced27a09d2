-- Inserts the segments of job $1, one per element of the arrays, pending and ready.
INSERT INTO job_segments (job_id, segment_index, start_ms, end_ms, input, priority,
                          max_attempts, status)
SELECT $1, s.segment_index, s.start_ms, s.end_ms, s.input, $2, $3, 'pending'
FROM unnest($4::int[], $5::int[], $6::int[], $7::jsonb[])
     AS s(segment_index, start_ms, end_ms, input)
