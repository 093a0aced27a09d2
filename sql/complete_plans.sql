-- Records many successful plans of worker $1 in one statement: (job, attempt, segment
-- count, plan data, first) per element of $2..$6, and their segments per element of
-- $7..$11 (start, end, input, id, leased), plan after plan: a plan's segments are
-- elements first + 1 to first + count, their indexes 0 to count - 1. Fenced per job on
-- (attempt, worker, step): a plan whose lease was lost changes nothing, and its segments
-- are not inserted (only the jobs the UPDATE actually moved insert theirs). A job moves
-- to its segments step, or straight to finalize when it has none; its segments copy its
-- priority and max_attempts. run_at is kept, so a finalize step takes the job's place in
-- the queue.
-- Segments the worker marked in $11 are inserted already leased to it (for $12 seconds,
-- attempt 1): it has free slots for them, and it saves a claim of each. Segment ids ($10)
-- come from the worker, which then runs the leased ones. A cancelling job's segments are
-- never leased, nor are those of a user with a ceiling (users.max_running_segments),
-- which only the claim hands out. Segments take their job's user as owner_id (the nil
-- UUID without one), the key the claim shares by. Wakes the workers on commit when
-- anything was left for them. Returns (job, cancelling, unleasable, max_attempts) per
-- plan recorded: a job whose cancel was requested meanwhile is settled by the caller;
-- the segments of an unleasable one were all inserted pending.
WITH locked AS MATERIALIZED (
    -- Job rows are locked in id order, as every statement writing several jobs (the
    -- heartbeat among them) locks them, so they cannot deadlock. Found by key only (see
    -- complete_segments.sql); the lease is checked on the locked values. Each plan finds
    -- its row and carries its own values along, so nothing later joins the input again
    -- (why: see complete_segments.sql's locked_jobs).
    SELECT j.id, j.attempts, j.locked_by, j.step, j.status, p.attempt, p.n, p.plan, p.first
    FROM unnest($2::uuid[], $3::int[], $4::int[], $5::jsonb[], $6::int[])
         AS p(id, attempt, n, plan, first)
    JOIN jobs j ON j.id = p.id
    ORDER BY j.id
    FOR UPDATE OF j
), planned AS (
    UPDATE jobs j
    SET step = CASE WHEN l.n > 0 THEN 'segments'::job_step ELSE 'finalize'::job_step END,
        segments_total = l.n,
        segments_done = 0,
        progress = 0,
        metadata = coalesce(j.metadata, '{}'::jsonb) || jsonb_build_object('plan', l.plan),
        attempts = 0,
        locked_by = NULL,
        lease_expires_at = NULL,
        last_error = NULL,
        updated_at = now()
    FROM locked l
    WHERE j.id = l.id AND l.attempts = l.attempt AND l.locked_by = $1
      AND l.step = 'plan' AND l.status = 'running'
    RETURNING j.id, j.priority, j.max_attempts, l.n, l.first,
              j.cancel_requested_at IS NOT NULL AS cancelling,
              coalesce(j.user_id, '00000000-0000-0000-0000-000000000000') AS owner_id,
              -- A user with a ceiling gets its segments through the claim, which checks it.
              j.cancel_requested_at IS NOT NULL
                OR EXISTS (SELECT 1 FROM users u
                           WHERE u.id = j.user_id AND u.max_running_segments IS NOT NULL)
                AS unleasable
), inserted AS (
    -- Each recorded plan unnests its own slice of the segment arrays: no join between the
    -- segments and the plans, whose generic plan could only guess their sizes.
    INSERT INTO job_segments (id, job_id, segment_index, start_ms, end_ms, input, priority,
                              max_attempts, status, locked_by, lease_expires_at, attempts,
                              owner_id)
    SELECT s.id, p.id, (s.ord - 1)::int, s.start_ms, s.end_ms, s.input, p.priority,
           p.max_attempts,
           CASE WHEN s.leased AND NOT p.unleasable THEN 'running' ELSE 'pending' END,
           CASE WHEN s.leased AND NOT p.unleasable THEN $1 END,
           CASE WHEN s.leased AND NOT p.unleasable THEN now() + make_interval(secs => $12) END,
           CASE WHEN s.leased AND NOT p.unleasable THEN 1 ELSE 0 END,
           p.owner_id
    FROM planned p
    CROSS JOIN LATERAL unnest(
        ($7::int[])[p.first + 1 : p.first + p.n],
        ($8::int[])[p.first + 1 : p.first + p.n],
        ($9::jsonb[])[p.first + 1 : p.first + p.n],
        ($10::uuid[])[p.first + 1 : p.first + p.n],
        ($11::bool[])[p.first + 1 : p.first + p.n]
    ) WITH ORDINALITY AS s(start_ms, end_ms, input, id, leased, ord)
    RETURNING status
), notified AS (
    SELECT count(*) AS n
    FROM (SELECT pg_notify('octavia_work', '')
          FROM (SELECT 1 FROM inserted WHERE status = 'pending'
                UNION ALL
                SELECT 1 FROM planned WHERE n = 0) ready
          LIMIT 1) x
)
SELECT p.id, p.cancelling, p.unleasable, p.max_attempts
FROM planned p, notified
