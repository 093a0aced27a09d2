-- How many jobs user $1 has (the chaos check that retried creations made one job each).
SELECT count(*) FROM jobs WHERE user_id = $1
