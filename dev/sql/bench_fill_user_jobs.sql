-- For `octavia-dev bench --suite`'s fairness figure: $2 running noop jobs of $3 pending
-- segments each for every user of $1, at their segments step, as plans leave them.
WITH jobs AS (
    INSERT INTO jobs (job_type, status, step, segments_total, user_id)
    SELECT 'noop', 'running', 'segments', $3::int, u.id
    FROM unnest($1::uuid[]) AS u(id) CROSS JOIN generate_series(1, $2::int)
    RETURNING id, user_id
)
INSERT INTO job_segments (job_id, owner_id, segment_index, status, input)
SELECT j.id, j.user_id, i, 'pending', '{}'::jsonb
FROM jobs j CROSS JOIN generate_series(0, $3::int - 1) AS i
