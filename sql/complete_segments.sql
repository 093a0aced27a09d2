-- Records the results of many segment attempts in one statement: (id, attempt, result)
-- per element of $1/$2/$3. Fenced: a result is recorded only if the segment is still
-- running under that attempt, so a worker that lost its lease changes nothing.
--
-- Then, per job, adds the completed count to jobs.segments_done and, when the last
-- segment is done, moves the job to its finalize step in this same statement: the job
-- row lock serialises concurrent completions of one job, so exactly one of them sees the
-- count reach the total. Job rows are locked in id order (locked_jobs) so two batches
-- completing segments of the same jobs cannot deadlock.
--
-- The job keeps its run_at, so its finalize step takes the job's place in the queue
-- (oldest first) instead of waiting behind every plan queued since.
--
-- One statement, one round trip, its own transaction: a finalize made ready wakes the
-- workers from inside it (`notified`), so the notification is sent only on commit.
--
-- Returns one row per job touched: whether it became ready to finalize for any worker,
-- whether it is being cancelled or already failed (the caller then settles it), the
-- completed segment ids (the others were stale), and, for a finalize leased to this
-- worker, what running it needs.
WITH done AS (
    -- Each input element finds its row by primary key, in id order, and the fence is
    -- checked on the row written (after waiting for any other writer of it). No lock is taken first:
    -- the heartbeat takes segment rows with SKIP LOCKED, so it never waits for this
    -- statement and the two cannot deadlock; locking first would write a lock record per
    -- row before the update writes the row again.
    --
    -- The fence is a CASE so that it implies nothing about `status`: written as
    -- `s.status = 'running'`, it let the planner walk job_segments_lease_idx (whose dead
    -- entries, one per segment that ran, grow until vacuum) instead of the primary key.
    UPDATE job_segments s
    SET status = 'completed',
        result = d.result,
        finished_at = now(),
        locked_by = NULL,
        lease_expires_at = NULL,
        last_error = NULL,
        updated_at = now()
    FROM (SELECT u.id, u.attempt, u.result
          FROM unnest($1::uuid[], $2::int[], $3::jsonb[]) AS u(id, attempt, result)
          ORDER BY u.id) d
    WHERE s.id = d.id
      AND CASE WHEN s.status = 'running' THEN s.attempts END = d.attempt
    RETURNING s.id, s.job_id
), counts AS (
    SELECT job_id, count(*)::int AS n, array_agg(id) AS ids FROM done GROUP BY job_id
), locked_jobs AS MATERIALIZED (
    -- FOR UPDATE returns each job's latest version (after waiting for any other batch
    -- holding it), so `ready` is computed on what this statement will update. It
    -- carries what the update needs, which then reads it alone: joined to the input again,
    -- the generic plan (which guesses 10 elements) rescanned it once per row.
    SELECT j.id, c.n, c.ids,
           j.step = 'segments' AND j.status = 'running' AND j.cancel_requested_at IS NULL
           AND j.segments_done + c.n >= j.segments_total AS ready,
           j.id = ANY($4::uuid[]) AS ours
    FROM counts c JOIN jobs j ON j.id = c.job_id
    ORDER BY j.id
    FOR UPDATE OF j
), bumped AS (
    -- A job made ready is leased at once to this worker ($5, for $6 seconds) when it is
    -- among $4 (`ours`), the jobs it has free slots for: it saves a claim and an update
    -- of the job. The others wait for any worker's claim, woken by `notified`.
    UPDATE jobs j
    SET segments_done = j.segments_done + l.n,
        progress = least(100, (j.segments_done + l.n) * 100 / greatest(j.segments_total, 1)),
        step = CASE WHEN l.ready THEN 'finalize'::job_step ELSE j.step END,
        attempts = CASE
            WHEN l.ready AND l.ours THEN 1
            WHEN l.ready THEN 0
            ELSE j.attempts
        END,
        locked_by = CASE WHEN l.ready AND l.ours THEN $5 ELSE j.locked_by END,
        lease_expires_at = CASE
            WHEN l.ready AND l.ours THEN now() + make_interval(secs => $6)
            ELSE j.lease_expires_at
        END,
        updated_at = now()
    FROM locked_jobs l
    WHERE j.id = l.id
    RETURNING j.id, l.ready AND j.locked_by IS NULL AS finalize_ready,
              l.ready AND j.locked_by IS NOT NULL AS leased,
              (j.cancel_requested_at IS NOT NULL OR j.status <> 'running') AS stopping,
              j.job_type, j.user_id, j.project_id, j.input_media_id, j.metadata, j.run,
              j.segments_total, j.priority, j.max_attempts, l.ids, j.traceparent
), notified AS (
    -- pg_notify runs once if any job became ready for any worker; PostgreSQL would fold
    -- repeats anyway.
    SELECT count(*) AS n
    FROM (SELECT pg_notify('octavia_work', '') FROM bumped WHERE finalize_ready LIMIT 1) x
)
SELECT b.id, b.job_type, b.user_id, b.project_id, b.input_media_id, b.metadata, b.run,
       b.segments_total, b.priority, b.max_attempts, b.finalize_ready, b.stopping, b.ids,
       b.leased, b.traceparent
FROM bumped b, notified
