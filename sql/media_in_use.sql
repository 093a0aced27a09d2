-- Jobs still in progress (not completed, failed or cancelled) that read one of media
-- files $1 as their input, or that belong to project $2 or user $3 (each may be NULL), for
-- a refusal that names them. At most 10.
SELECT j.id, j.status::text AS status
FROM jobs j
WHERE j.status IN ('pending', 'queued', 'running')
  AND (j.input_media_id = ANY($1) OR j.project_id = $2 OR j.user_id = $3)
ORDER BY j.created_at
LIMIT 10
