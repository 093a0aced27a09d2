-- One job, for `octavia jobs show` and the API.
SELECT id, user_id, project_id, job_type, status::text, step::text, progress,
       segments_done, segments_total, run, attempts, max_attempts, priority, run_at,
       locked_by, lease_expires_at, last_error, cancel_requested_at, metadata,
       cost_credits, input_media_id, output_media_id, created_at, started_at, finished_at,
       swept_run
FROM jobs WHERE id = $1
