-- Queue overview for `octavia queue stats`: jobs and segments by status, the age of the
-- oldest job waiting to be planned, and leases held per worker.
SELECT 'jobs' AS kind, status::text AS name, count(*)::bigint AS n, NULL::float8 AS seconds
FROM jobs GROUP BY status
UNION ALL
SELECT 'segments', status, count(*), NULL FROM job_segments GROUP BY status
UNION ALL
SELECT 'oldest_queued', 'seconds', NULL,
       extract(epoch FROM now() - min(created_at))::float8
FROM jobs WHERE status = 'queued'
UNION ALL
SELECT 'leases', worker, count(*), NULL FROM (
    SELECT locked_by AS worker FROM jobs WHERE locked_by IS NOT NULL
    UNION ALL
    SELECT locked_by FROM job_segments WHERE status = 'running'
) held GROUP BY worker
ORDER BY 1, 2
