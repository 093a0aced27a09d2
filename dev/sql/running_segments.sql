-- Every segment leased right now (for the chaos report: what a fault may catch in flight).
SELECT id FROM job_segments WHERE status = 'running'
