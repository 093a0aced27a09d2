-- Seconds from $1 to the first segment or job completed at or after it (NULL if none):
-- how long work took to flow again after a fault ended at $1.
SELECT extract(epoch FROM min(finished_at) - $1)::float8
FROM (
    SELECT finished_at FROM job_segments WHERE status = 'completed' AND finished_at >= $1
    UNION ALL
    SELECT finished_at FROM jobs WHERE status = 'completed' AND finished_at >= $1
) done
