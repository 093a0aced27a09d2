-- The segments of job $1 in order, for `octavia jobs show` and finalize steps.
SELECT id, segment_index, status, attempts, max_attempts, start_ms, end_ms, locked_by,
       last_error, input, result, finished_at
FROM job_segments WHERE job_id = $1 ORDER BY segment_index
