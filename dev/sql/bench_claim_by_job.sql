-- For `octavia-dev bench --suite`'s fairness figure: the segment claim as it was before the
-- fair share between users, fair between jobs only, run on the claim index it was written
-- for (priority, job_id, segment_index), which the benchmark recreates. Its text is kept
-- as it was, comments included.
--
-- Claims up to $2 segments for worker $1, leased for $4 seconds, sharing them fairly
-- between jobs. $3: job types to claim, NULL for all.
--
-- 1. ready_jobs walks the distinct (priority, job_id) of pending segments in order with a
--    recursive "loose index scan" of job_segments_claim_idx: one index descent per job,
--    however many segments each job has. It is evaluated lazily, so it stops as soon as
--    `eligible` has its rows.
-- 2. eligible keeps up to $2 of those jobs that may run segments now (running, at the
--    segments step, not being cancelled, of a wanted type), in the walk's order. The
--    LIMIT 1 in its LATERAL subquery (at most one row anyway: j.id is the key) is what
--    keeps this a nested loop driven by the walk, pulled one job at a time: without it
--    the planner pulls the subquery up into a plain join and, when jobs' statistics
--    underestimate the running ones (analyzed while they were queued), puts jobs on the
--    outside, walks every ready job, and hands out jobs in heap order. Found by
--    `octavia chaos kills`: priorities were ignored and a killed worker's rescued
--    segments waited behind every newer job, since their jobs' rows had moved to the
--    end of the heap.
-- 3. Each eligible job gets an equal share of the batch: $2 divided by the number of jobs
--    of the most urgent priority present. Jobs are visited by priority (in random order
--    within one, see `picked`) and the outer LIMIT stops the visit once $2 rows are
--    locked, so a lower priority only gets the slots the more urgent jobs cannot fill.
--    Job ids are time-ordered (UUIDv7), so at equal priority the oldest jobs are the
--    eligible ones. One huge job therefore takes one share, never the whole fleet.
-- 4. The per-job subquery locks with SKIP LOCKED, re-checked after locking as in
--    claim_job_steps.sql; MATERIALIZED fences the LIMIT.
--    The entries of segments claimed since the last vacuum stay in the index, dead,
--    among each job's pending ones, and every scan steps over those in its way. So each
--    scan starts where the one before it stopped (the walk finds the job's first pending
--    entry, `ready` its first ready one from there), and `picked` takes its share from a
--    random segment index onwards, then from the first ready one if the job's end came
--    first: claimed in index order, a job's dead entries all piled up in front of its
--    pending ones and a claim late in 10 jobs of 10,000 segments stepped over thousands
--    (3,166 buffers for 64 rows, scanning from each job's start three times; 1,814 from
--    where the walk stopped). From random points they stay scattered: the claim's
--    backend CPU per segment over those jobs went from 44-76 us, growing with the dead
--    entries, to 32-39 us. Within a job, segments run in no particular order.
-- 5. The locked rows are updated through their ctid, not their id: a TID scan is the only
--    way to reach them that sequential scans being ruled out leaves (see the worker's
--    session settings), whatever the statistics say. Joined on the id, a plan made while
--    job_segments looked empty (a fresh table, or one pruned and vacuumed, then filled
--    by a burst of plans) walked the whole primary key once per claim, over a second per
--    claim until autovacuum's next ANALYZE. A row updated by a transaction that committed
--    after this statement began is not visible at its new ctid and is left unclaimed, as
--    SKIP LOCKED would have left it.
WITH RECURSIVE ready_jobs AS (
    (SELECT s.priority, s.job_id, s.segment_index
     FROM job_segments s
     WHERE s.status = 'pending'
     ORDER BY s.priority, s.job_id
     LIMIT 1)
    UNION ALL
    SELECT nxt.priority, nxt.job_id, nxt.segment_index
    FROM ready_jobs r
    CROSS JOIN LATERAL (
        SELECT s.priority, s.job_id, s.segment_index
        FROM job_segments s
        WHERE s.status = 'pending'
          AND (s.priority, s.job_id) > (r.priority, r.job_id)
        ORDER BY s.priority, s.job_id
        LIMIT 1
    ) nxt
), eligible AS MATERIALIZED (
    SELECT r.priority, r.job_id, j.job_type, j.run, j.segments_total, j.traceparent,
           ready.segment_index AS first_ready
    FROM ready_jobs r
    CROSS JOIN LATERAL (
        SELECT j.job_type, j.run, j.segments_total, j.traceparent
        FROM jobs j
        WHERE j.id = r.job_id
          AND j.status = 'running'
          AND j.step = 'segments'
          AND j.cancel_requested_at IS NULL
          AND ($3::text[] IS NULL OR j.job_type = ANY($3::text[]))
        LIMIT 1
    ) j
    -- A job whose pending segments all wait out a retry delay takes no place in the
    -- batch, so jobs behind it with work ready still get their share. Written as a
    -- LATERAL in the claim index's order with LIMIT 1, not as EXISTS: an EXISTS was
    -- planned as a sequential scan of job_segments per job.
    CROSS JOIN LATERAL (
        SELECT s.segment_index
        FROM job_segments s
        WHERE s.job_id = r.job_id AND s.priority = r.priority
          AND s.status = 'pending' AND s.run_at <= now()
          AND s.segment_index >= r.segment_index
        ORDER BY s.segment_index
        LIMIT 1
    ) ready
    LIMIT $2
), share AS (
    SELECT ceil($2::numeric / greatest(count(*), 1))::int AS per_job
    FROM eligible
    WHERE priority = (SELECT min(priority) FROM eligible)
), picked AS MATERIALIZED (
    SELECT s.ctid, e.job_type, e.run, e.traceparent
    -- Within a priority, the eligible jobs are visited in random order: the batch often
    -- runs out before the last job's share (shares are rounded up, and a worker claims
    -- what its free slots allow), and a fixed order would always shortchange the same
    -- jobs. Most urgent priority first still.
    FROM (SELECT * FROM eligible ORDER BY priority, random()) e
    CROSS JOIN share
    -- Where this claim starts in the job (point 4).
    CROSS JOIN LATERAL (
        SELECT greatest(e.first_ready, floor(random() * e.segments_total)::int) AS at
    ) r
    CROSS JOIN LATERAL (
        -- From `at` onwards; the second part runs only if the first found too few.
        SELECT after.ctid
        FROM (SELECT s.ctid
              FROM job_segments s
              WHERE s.job_id = e.job_id AND s.priority = e.priority
                AND s.status = 'pending' AND s.run_at <= now()
                AND s.segment_index >= r.at
              ORDER BY s.segment_index
              LIMIT share.per_job
              FOR UPDATE SKIP LOCKED) after
        UNION ALL
        SELECT before.ctid
        FROM (SELECT s.ctid
              FROM job_segments s
              WHERE s.job_id = e.job_id AND s.priority = e.priority
                AND s.status = 'pending' AND s.run_at <= now()
                AND s.segment_index >= e.first_ready AND s.segment_index < r.at
              ORDER BY s.segment_index
              LIMIT share.per_job
              FOR UPDATE SKIP LOCKED) before
        LIMIT share.per_job
    ) s
    LIMIT $2
)
UPDATE job_segments s
SET status = 'running',
    locked_by = $1,
    lease_expires_at = now() + make_interval(secs => $4),
    attempts = s.attempts + 1,
    updated_at = now()
FROM picked
WHERE s.ctid = picked.ctid
RETURNING s.id, s.job_id, picked.job_type, picked.run, s.segment_index, s.start_ms, s.end_ms,
          s.attempts, s.max_attempts, s.input, picked.traceparent
