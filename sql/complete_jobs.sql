-- Records many successful finalize steps of worker $1 in one statement: (job, attempt,
-- output media id or NULL) per element of $2..$4, and the output media rows per element
-- of $5..$14. Fenced per job on (attempt, worker, step): a finalize whose lease was lost
-- changes nothing and its media row is not inserted (the INSERT joins the jobs actually
-- completed). jobs.output_media_id references the new row; the foreign key is checked at
-- the end of the statement, after both writes.
WITH locked AS MATERIALIZED (
    -- Job rows are locked in id order, as every statement writing several jobs (the
    -- heartbeat among them) locks them, so they cannot deadlock. Found by key only (see
    -- complete_segments.sql); the lease is checked on the locked values. Each input
    -- element finds its row and carries its attempt and output along, so the update reads
    -- this alone (why: see complete_segments.sql's locked_segments).
    SELECT j.id, j.attempts, j.locked_by, j.step, j.status, f.attempt, f.output
    FROM unnest($2::uuid[], $3::int[], $4::uuid[]) AS f(id, attempt, output)
    JOIN jobs j ON j.id = f.id
    ORDER BY j.id
    FOR UPDATE OF j
), done AS (
    UPDATE jobs j
    SET status = 'completed',
        step = 'done',
        progress = 100,
        output_media_id = l.output,
        finished_at = now(),
        locked_by = NULL,
        lease_expires_at = NULL,
        last_error = NULL,
        updated_at = now()
    FROM locked l
    WHERE j.id = l.id AND l.attempts = l.attempt AND l.locked_by = $1
      AND l.step = 'finalize' AND l.status = 'running'
    RETURNING j.id, j.output_media_id
), media AS (
    INSERT INTO media_files (id, project_id, user_id, s3_key, media_type, duration_seconds,
                             size_bytes, mimetype, derived_from, metadata)
    SELECT m.id, m.project_id, m.user_id, m.s3_key, m.media_type, m.duration::numeric,
           m.size_bytes, m.mimetype, m.derived_from, m.metadata
    FROM unnest($5::uuid[], $6::uuid[], $7::uuid[], $8::text[], $9::text[], $10::float8[],
                $11::bigint[], $12::text[], $13::uuid[], $14::jsonb[])
         AS m(id, project_id, user_id, s3_key, media_type, duration, size_bytes, mimetype,
              derived_from, metadata)
    JOIN done ON done.output_media_id = m.id
    RETURNING 1
)
SELECT id FROM done
