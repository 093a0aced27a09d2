-- list_user_jobs.sql for an admin, who reads everyone's jobs: a page newest first,
-- optionally of one status ($1) and project ($2), after the cursor ($3 created_at, $4 id).
SELECT id, user_id, project_id, job_type, status::text, progress, cost_credits,
       input_media_id, output_media_id, last_error, created_at, finished_at
FROM jobs
WHERE ($1::text IS NULL OR status = $1::text::job_status)
  AND ($2::uuid IS NULL OR project_id = $2)
  AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $5
