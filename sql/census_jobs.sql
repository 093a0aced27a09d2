-- What the orphan pass needs to know of jobs $1 to tell which of their stored objects an
-- attempt may still read or write (see docs/storage.md): the job's state, run, attempt
-- and swept run; per segment its index, status and attempts; and every key under
-- jobs/{id}/ that a segment names (its input, which the plan wrote, and its result). One
-- statement, so all of it is one snapshot.
SELECT j.id, j.status::text AS status, j.step::text AS step, j.run, j.attempts, j.swept_run,
       ARRAY(SELECT s.segment_index FROM job_segments s WHERE s.job_id = j.id
             ORDER BY s.segment_index) AS segment_indexes,
       ARRAY(SELECT s.status FROM job_segments s WHERE s.job_id = j.id
             ORDER BY s.segment_index) AS segment_statuses,
       ARRAY(SELECT s.attempts FROM job_segments s WHERE s.job_id = j.id
             ORDER BY s.segment_index) AS segment_attempts,
       octavia_segment_keys(j.id) AS keys
FROM jobs j
WHERE j.id = ANY($1)
