-- Segments of jobs $1 that have not started will not run in this job run (the job is
-- being cancelled or has failed). A retry sets them back to pending.
UPDATE job_segments
SET status = 'cancelled', finished_at = now(), updated_at = now()
WHERE job_id = ANY($1::uuid[]) AND status = 'pending'
