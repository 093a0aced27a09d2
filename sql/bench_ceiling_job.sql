-- For the benchmark ceiling: one running job at its segments step.
INSERT INTO jobs (id, job_type, status, step, segments_total)
VALUES ($1, 'noop', 'running', 'segments', $2)
