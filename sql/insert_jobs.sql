-- Inserts jobs, one per element of the parallel arrays, queued and ready to plan, and wakes
-- idle workers: the notification is sent on commit, once however many jobs (PostgreSQL
-- folds identical notifications of one transaction). Arrays rather than one INSERT per
-- job: bulk enqueue of 100,000 jobs is one statement per chunk.
WITH inserted AS (
    INSERT INTO jobs (id, user_id, project_id, job_type, status, input_media_id, metadata,
                      cost_credits, priority, run_at, max_attempts)
    SELECT j.id, j.user_id, j.project_id, j.job_type, 'queued', j.input_media_id, j.metadata,
           j.cost_credits, j.priority, coalesce(j.run_at, now()), j.max_attempts
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::jsonb[],
                $7::bigint[], $8::smallint[], $9::timestamptz[], $10::int[])
         AS j(id, user_id, project_id, job_type, input_media_id, metadata, cost_credits,
              priority, run_at, max_attempts)
    RETURNING 1
)
SELECT count(*) FROM (SELECT pg_notify('octavia_work', '') FROM inserted LIMIT 1) woken
