-- For `octavia-dev bench --suite --soak-minutes`: bytes of each queue table with its indexes
-- and TOAST.
SELECT pg_total_relation_size('job_segments')::bigint, pg_total_relation_size('jobs')::bigint
