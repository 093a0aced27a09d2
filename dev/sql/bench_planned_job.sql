-- For `octavia-dev bench`: a running noop job $1 at its segments step, as its plan leaves it
-- with $2 segments (the pgbench ceiling's job, and the jobs of a run that times segments
-- alone).
INSERT INTO jobs (id, job_type, status, step, segments_total)
VALUES ($1, 'noop', 'running', 'segments', $2)
