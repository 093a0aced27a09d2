-- For `octavia-dev bench`: whether job $1 completed, and how long after its insert its first
-- step was claimed (both instants on the database clock).
SELECT status::text, extract(epoch FROM started_at - created_at)::float8 * 1000
FROM jobs WHERE id = $1
