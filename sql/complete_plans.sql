-- Records many successful plans of worker $1 in one statement: (job, attempt, segment
-- count, plan data) per element of $2..$5, and their segments per element of $6..$10
-- (job, index, start, end, input). Fenced per job on (attempt, worker, step): a plan whose
-- lease was lost changes nothing, and its segments are not inserted (the INSERT joins the
-- jobs the UPDATE actually moved). A job moves to its segments step, or straight to
-- finalize when it has none; its segments copy its priority and max_attempts. run_at is
-- kept, so a finalize step takes the job's place in the queue.
-- Segments the worker marked in $12 are inserted already leased to it (for $13 seconds,
-- attempt 1): it has free slots for them, and it saves a claim of each. Segment ids ($11)
-- come from the worker, which then runs the leased ones. A cancelling job's segments are
-- never leased. Wakes the workers on commit when anything was left for them. Returns
-- (job, cancelling, max_attempts) per plan recorded: a job whose cancel was requested
-- meanwhile is settled by the caller.
WITH locked AS MATERIALIZED (
    -- Job rows are locked in id order, as every statement writing several jobs (the
    -- heartbeat among them) locks them, so they cannot deadlock. Found by key only (see
    -- complete_segments.sql); the lease is checked on the locked values.
    SELECT j.id, j.attempts, j.locked_by, j.step, j.status
    FROM jobs j
    WHERE j.id = ANY($2::uuid[])
    ORDER BY j.id
    FOR UPDATE OF j
), planned AS (
    UPDATE jobs j
    SET step = CASE WHEN p.n > 0 THEN 'segments'::job_step ELSE 'finalize'::job_step END,
        segments_total = p.n,
        segments_done = 0,
        progress = 0,
        metadata = coalesce(j.metadata, '{}'::jsonb) || jsonb_build_object('plan', p.plan),
        attempts = 0,
        locked_by = NULL,
        lease_expires_at = NULL,
        last_error = NULL,
        updated_at = now()
    FROM unnest($2::uuid[], $3::int[], $4::int[], $5::jsonb[]) AS p(id, attempt, n, plan),
         locked l
    WHERE l.id = p.id AND j.id = l.id AND l.attempts = p.attempt AND l.locked_by = $1
      AND l.step = 'plan' AND l.status = 'running'
    RETURNING j.id, j.priority, j.max_attempts, p.n,
              j.cancel_requested_at IS NOT NULL AS cancelling
), inserted AS (
    INSERT INTO job_segments (id, job_id, segment_index, start_ms, end_ms, input, priority,
                              max_attempts, status, locked_by, lease_expires_at, attempts)
    SELECT s.id, s.job_id, s.segment_index, s.start_ms, s.end_ms, s.input, p.priority,
           p.max_attempts,
           CASE WHEN s.leased AND NOT p.cancelling THEN 'running' ELSE 'pending' END,
           CASE WHEN s.leased AND NOT p.cancelling THEN $1 END,
           CASE WHEN s.leased AND NOT p.cancelling THEN now() + make_interval(secs => $13) END,
           CASE WHEN s.leased AND NOT p.cancelling THEN 1 ELSE 0 END
    FROM unnest($6::uuid[], $7::int[], $8::int[], $9::int[], $10::jsonb[], $11::uuid[],
                $12::bool[])
         AS s(job_id, segment_index, start_ms, end_ms, input, id, leased)
    JOIN planned p ON p.id = s.job_id
    RETURNING status
), notified AS (
    SELECT count(*) AS n
    FROM (SELECT pg_notify('octavia_work', '')
          FROM (SELECT 1 FROM inserted WHERE status = 'pending'
                UNION ALL
                SELECT 1 FROM planned WHERE n = 0) ready
          LIMIT 1) x
)
SELECT p.id, p.cancelling, p.max_attempts
FROM planned p, notified
