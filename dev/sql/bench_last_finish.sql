-- For `octavia-dev bench`: seconds from $1 to the last job's finish (database clock).
SELECT extract(epoch FROM max(finished_at) - $1::timestamptz)::float8 FROM jobs
