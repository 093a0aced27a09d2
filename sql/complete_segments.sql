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
-- Returns one row per job touched: whether it became ready to finalize and whether it is
-- being cancelled or already failed (the caller then settles it), plus the completed
-- segment ids (the others were stale).
WITH locked_segments AS MATERIALIZED (
    -- Segment rows are locked in id order before they are written, as heartbeat.sql
    -- locks them: the worker's heartbeat renews these same rows meanwhile, and two
    -- statements locking them in their lists' orders deadlocked.
    SELECT s.id
    FROM job_segments s
    JOIN unnest($1::uuid[], $2::int[]) AS d(id, attempt)
      ON s.id = d.id AND s.attempts = d.attempt
    WHERE s.status = 'running'
    ORDER BY s.id
    FOR UPDATE OF s
), done AS (
    UPDATE job_segments s
    SET status = 'completed',
        result = d.result,
        finished_at = now(),
        locked_by = NULL,
        lease_expires_at = NULL,
        last_error = NULL,
        updated_at = now()
    FROM unnest($1::uuid[], $2::int[], $3::jsonb[]) AS d(id, attempt, result),
         locked_segments l
    WHERE s.id = d.id AND l.id = d.id AND s.attempts = d.attempt AND s.status = 'running'
    RETURNING s.id, s.job_id
), counts AS (
    SELECT job_id, count(*)::int AS n, array_agg(id) AS ids FROM done GROUP BY job_id
), locked_jobs AS (
    SELECT j.id FROM jobs j
    WHERE j.id IN (SELECT job_id FROM counts)
    ORDER BY j.id
    FOR UPDATE
), bumped AS (
    UPDATE jobs j
    SET segments_done = j.segments_done + c.n,
        progress = least(100, (j.segments_done + c.n) * 100 / greatest(j.segments_total, 1)),
        step = CASE
            WHEN j.step = 'segments' AND j.status = 'running'
                 AND j.cancel_requested_at IS NULL
                 AND j.segments_done + c.n >= j.segments_total
            THEN 'finalize'::job_step
            ELSE j.step
        END,
        attempts = CASE
            WHEN j.step = 'segments' AND j.status = 'running'
                 AND j.cancel_requested_at IS NULL
                 AND j.segments_done + c.n >= j.segments_total
            THEN 0
            ELSE j.attempts
        END,
        updated_at = now()
    FROM counts c, locked_jobs l
    WHERE j.id = c.job_id AND l.id = c.job_id
    RETURNING j.id, j.step = 'finalize' AS finalize_ready,
              (j.cancel_requested_at IS NOT NULL OR j.status <> 'running') AS stopping
), notified AS (
    -- pg_notify runs once if any job became ready; PostgreSQL would fold repeats anyway.
    SELECT count(*) AS n
    FROM (SELECT pg_notify('octavia_work', '') FROM bumped WHERE finalize_ready LIMIT 1) x
)
SELECT b.id, b.finalize_ready, b.stopping, c.ids
FROM bumped b JOIN counts c ON c.job_id = b.id, notified
