-- For `octavia-dev bench`: the phases of a throughput run, in seconds from $1 on the database
-- clock: the first and last segment inserted by a plan, the first and last segment
-- finished, when the 10th and the 90th percentile of them had finished, and the segments
-- per second between those two (the steady part, plans and the last stragglers left out).
WITH f AS (
    SELECT percentile_cont(0.1) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at)) AS p10,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at)) AS p90,
           count(*) AS n
    FROM job_segments
    WHERE finished_at IS NOT NULL
)
SELECT extract(epoch FROM min(s.created_at) - $1::timestamptz)::float8,
       extract(epoch FROM max(s.created_at) - $1::timestamptz)::float8,
       extract(epoch FROM min(s.finished_at) - $1::timestamptz)::float8,
       extract(epoch FROM max(s.finished_at) - $1::timestamptz)::float8,
       (0.8 * f.n / nullif(f.p90 - f.p10, 0))::float8,
       (f.p10 - extract(epoch FROM $1::timestamptz))::float8,
       (f.p90 - extract(epoch FROM $1::timestamptz))::float8
FROM job_segments s, f
GROUP BY f.n, f.p10, f.p90
