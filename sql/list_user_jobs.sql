-- A page of user $1's jobs, newest first, optionally of one status ($2) and project ($3),
-- after the cursor ($4 created_at, $5 id; NULL for the first page). The row comparison
-- walks jobs_user_id_created_at_idx from the cursor on.
SELECT id, user_id, project_id, job_type, status::text, progress, cost_credits,
       input_media_id, output_media_id, last_error, created_at, finished_at
FROM jobs
WHERE user_id = $1
  AND ($2::text IS NULL OR status = $2::text::job_status)
  AND ($3::uuid IS NULL OR project_id = $3)
  AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $6
