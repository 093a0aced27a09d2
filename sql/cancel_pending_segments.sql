-- Segments that have not started will not run in this run of their job, when the job is
-- stopping (its cancel was requested, or it already failed). Jobs of $1 that are not
-- stopping keep their pending segments, so callers may pass any jobs they touched.
-- A retry sets cancelled segments back to pending.
UPDATE job_segments s
SET status = 'cancelled', finished_at = now(), updated_at = now()
FROM jobs j
WHERE s.job_id = ANY($1::uuid[])
  AND s.status = 'pending'
  AND j.id = s.job_id
  AND (j.cancel_requested_at IS NOT NULL OR j.status NOT IN ('queued', 'running'))
