-- The newest $2 jobs, optionally of one status ($1 NULL: all).
SELECT id, job_type, status::text, step::text, progress, segments_done, segments_total,
       run, created_at, finished_at, last_error
FROM jobs
WHERE $1::text IS NULL OR status = $1::text::job_status
ORDER BY created_at DESC, id DESC
LIMIT $2
