-- Records many completed jobs of worker $1 in one statement: (job, attempt, output media
-- id or NULL, step, plan data, segment) per element of $2..$4 and $15..$21, and the output
-- media rows per element of $5..$14.
--
-- A job completes from its finalize step, or from its plan step when the worker ran the
-- whole of a single-segment job under the plan's lease: step 'plan', its plan data, and
-- its one segment (id, start, end, input, result), inserted here already completed. Such
-- a job never had a claimable segment nor a finalize step, and is written as if it had.
--
-- Fenced per job on (attempt, worker, step): a completion whose lease was lost changes
-- nothing, and neither its segment nor its media row is inserted (both inserts read the
-- jobs actually completed). jobs.output_media_id references the new media row; the
-- foreign key is checked at the end of the statement, after both writes.
WITH locked AS MATERIALIZED (
    -- Job rows are locked in id order, as every statement writing several jobs (the
    -- heartbeat among them) locks them, so they cannot deadlock. Found by key only (see
    -- complete_segments.sql); the lease is checked on the locked values. Each input
    -- element finds its row and carries its own values along, so the update reads this
    -- alone (why: see complete_segments.sql's locked_jobs).
    SELECT j.id, j.attempts, j.locked_by, j.step, j.status, f.attempt, f.output,
           f.step AS done_step, f.plan, f.segment, f.start_ms, f.end_ms, f.input, f.result
    FROM unnest($2::uuid[], $3::int[], $4::uuid[], $15::text[], $16::jsonb[], $17::uuid[],
                $18::int[], $19::int[], $20::jsonb[], $21::jsonb[])
         AS f(id, attempt, output, step, plan, segment, start_ms, end_ms, input, result)
    JOIN jobs j ON j.id = f.id
    ORDER BY j.id
    FOR UPDATE OF j
), done AS (
    UPDATE jobs j
    SET status = 'completed',
        step = 'done',
        progress = 100,
        output_media_id = l.output,
        segments_total = CASE WHEN l.done_step = 'plan' THEN 1 ELSE j.segments_total END,
        segments_done = CASE WHEN l.done_step = 'plan' THEN 1 ELSE j.segments_done END,
        metadata = CASE
            WHEN l.done_step = 'plan'
                THEN coalesce(j.metadata, '{}'::jsonb) || jsonb_build_object('plan', l.plan)
            ELSE j.metadata
        END,
        finished_at = now(),
        -- Nothing of the job's steps is needed any more: its intermediate objects are
        -- the worker's to delete after this commit (Handler::completed), or the sweeper's.
        swept_run = j.run,
        locked_by = NULL,
        lease_expires_at = NULL,
        last_error = NULL,
        updated_at = now()
    FROM locked l
    WHERE j.id = l.id AND l.attempts = l.attempt AND l.locked_by = $1
      AND l.step::text = l.done_step AND l.status = 'running'
    RETURNING j.id, j.output_media_id, j.priority, j.max_attempts, l.done_step, l.segment,
              l.start_ms, l.end_ms, l.input, l.result
), segment AS (
    INSERT INTO job_segments (id, job_id, segment_index, start_ms, end_ms, input, result,
                              priority, max_attempts, status, attempts, finished_at)
    SELECT d.segment, d.id, 0, d.start_ms, d.end_ms, d.input, d.result, d.priority,
           d.max_attempts, 'completed', 1, now()
    FROM done d
    WHERE d.done_step = 'plan'
    RETURNING 1
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
