-- A job's segments counted by status, for the job's summary.
SELECT status, count(*)
FROM job_segments
WHERE job_id = $1
GROUP BY status
