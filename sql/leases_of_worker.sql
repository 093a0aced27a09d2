-- Segments leased by worker $1 (for the chaos report: what a kill leaves in flight).
SELECT count(*) FROM job_segments WHERE status = 'running' AND locked_by = $1
