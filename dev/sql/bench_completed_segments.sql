-- For `octavia-dev bench`: segments completed so far, from the jobs' counters (cheap however
-- many finished segment rows there are).
SELECT coalesce(sum(segments_done), 0)::bigint FROM jobs
