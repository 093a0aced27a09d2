-- Segments leased by worker $1 (for the chaos report: what a kill leaves in flight, and
-- so what may run again).
SELECT id FROM job_segments WHERE status = 'running' AND locked_by = $1
