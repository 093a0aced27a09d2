-- For segments $1 held by a worker killed at $2: seconds from the kill until the last of
-- them completed elsewhere (NULL if none did), and how many have not completed.
SELECT extract(epoch FROM max(finished_at) FILTER (WHERE status = 'completed') - $2)::float8,
       count(*) FILTER (WHERE status <> 'completed')
FROM job_segments
WHERE id = ANY($1::uuid[])
