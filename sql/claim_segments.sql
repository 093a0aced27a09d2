-- Claims up to $2 segments for worker $1, leased for $4 seconds, shared fairly between
-- users, then between each user's jobs. $3: job types to claim, NULL for all.
--
-- 1. `walk` visits the users with ready segments, most urgent priority first, with a
--    recursive "loose index scan" of job_segments_claim_idx (priority, owner_id, job_id,
--    segment_index): one index descent per user, to its first ready segment, plus one per
--    job of a user that can run nothing now (not running, at another step, being
--    cancelled, of an unwanted type). It yields each user's first job that can run
--    segments and moves on to the next user. At the most urgent priority it starts at a
--    random user id and wraps around once, so when more users are ready than a claim
--    serves, each claim serves another window of them (user ids are random UUIDs, so
--    every user is as likely as any to be in a window); lower priorities are walked from
--    their lowest user id. It is evaluated lazily and stops as soon as `owners` has its
--    users: at most max(16, $2 / 4), so that each gets a few rows rather than one (a
--    user costs a descent and two lookups whatever its share).
-- 2. `shares` splits the batch between the users of each priority in proportion to their
--    users.share_weight, exactly, by systematic sampling: laid end to end, each user's
--    quota is $2 * weight / total weight, and a user gets as many rows as the points
--    offset, offset + 1, offset + 2, ... (one random offset per claim) that fall in its
--    stretch. Quotas below one row are thus met on average over claims, and the shares
--    of a priority add up to $2 exactly. A user with max_running_segments gets at most
--    its ceiling minus its leased segments (as this statement sees them: the caller
--    closes the race between claims, see queue::claim), found among every leased segment
--    in job_segments_lease_idx, which only the claims of capped users read.
-- 3. `more` extends each user's walk (1.) from its first runnable job to as many runnable
--    jobs as its share has rows, in the index's (job id) order: job ids are time-ordered
--    UUIDv7, so a user's oldest jobs are the ones served, as between jobs before.
-- 4. `picked` visits the jobs by priority, in random order within one; each of a user's
--    jobs gets an equal part of its share (the remainder a row each to some of them), at
--    most its unfinished segments (segments_total - segments_done, which bounds its
--    pending ones). The outer LIMIT stops the visit once $2 rows are locked, so a
--    lower priority only gets the rows the more urgent users cannot fill. A user or job
--    that cannot fill its part leaves the rest of the batch empty; the worker claims
--    again at once after a claim that came back short, and that claim shares what is left
--    between everyone.
-- 5. Within a job, as before: the subquery locks with SKIP LOCKED, re-checked after
--    locking as in claim_job_steps.sql; MATERIALIZED fences the LIMIT. The entries of
--    segments claimed since the last vacuum stay in the index, dead, among each job's
--    pending ones, and every scan steps over those in its way. So each scan starts where
--    the one before it stopped (the walk finds the job's first pending entry, `ready` its
--    first ready one from there), and the pick takes its part from a random segment
--    index onwards, then from the first ready one if the job's end came first: claimed
--    in index order, a job's dead entries all piled up in front of its pending ones and a
--    claim late in 10 jobs of 10,000 segments stepped over thousands (3,166 buffers for
--    64 rows). Within a job, segments run in no particular order.
-- 6. The LIMIT 1 in the jobs lookups (at most one row anyway: j.id is the key) is what
--    keeps them nested loops driven by the walk, pulled one job at a time: without it the
--    planner pulls the subquery up into a plain join and, when jobs' statistics
--    underestimate the running ones, puts jobs on the outside, walks every ready job, and
--    hands out jobs in heap order (found by `octavia chaos kills`: priorities were
--    ignored). A job whose pending segments all wait out a retry delay runs nothing now;
--    that is a LATERAL in the claim index's order with LIMIT 1, not an EXISTS, which was
--    planned as a sequential scan of job_segments per job. The lookups are written twice,
--    in `walk` and in `more`: a function would hide them from the planner.
-- 7. The locked rows are updated through their ctid, not their id: a TID scan is the only
--    way to reach them that sequential scans being ruled out leaves (see the worker's
--    session settings), whatever the statistics say. Joined on the id, a plan made while
--    job_segments looked empty walked the whole primary key once per claim. A row
--    updated by a transaction that committed after this statement began is not visible
--    at its new ctid and is left unclaimed, as SKIP LOCKED would have left it.
-- Returns each row's owner and its ceiling (NULL for none), for the caller's check.
WITH RECURSIVE origin AS MATERIALIZED (
    SELECT gen_random_uuid() AS at, random() AS offset_rows
), walk AS (
    -- A position just before the random starting user, at the most urgent priority; never
    -- itself a result. It carries the first pending entry of the index (the head), where
    -- the walk wraps to: the entries of segments claimed since the last vacuum pile up,
    -- dead, in front of it, and a scan started at the head's key instead of the index's
    -- start steps over none of them (a scan from the start stepped over 660 pages of
    -- them per claim in `octavia-dev bench --suite`, 10 jobs of 10,000 segments).
    -- `bound` is the user id the walk stops before: none until it wraps, then the start.
    SELECT h.priority, o.at AS owner_id, NULL::uuid AS job_id, 0 AS segment_index,
           false AS wrapped, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid AS bound,
           h.owner_id AS head_owner, h.job_id AS head_job, h.segment_index AS head_index,
           true AS runnable, NULL::text AS job_type, NULL::int AS run,
           NULL::int AS segments_total, NULL::int AS unfinished, NULL::text AS traceparent,
           NULL::int AS first_ready
    FROM (SELECT s.priority, s.owner_id, s.job_id, s.segment_index
          FROM job_segments s
          WHERE s.status = 'pending'
          ORDER BY s.priority, s.owner_id, s.job_id, s.segment_index
          LIMIT 1) h
    CROSS JOIN origin o
    UNION ALL
    SELECT n.priority, n.owner_id, n.job_id, n.segment_index, n.wrapped, n.bound,
           r.head_owner, r.head_job, r.head_index,
           e.first_ready IS NOT NULL, e.job_type, e.run, e.segments_total, e.unfinished,
           e.traceparent, e.first_ready
    FROM walk r
    CROSS JOIN origin o
    CROSS JOIN LATERAL (
        -- The user's next job, while none of its jobs so far could run.
        (SELECT s.priority, s.owner_id, s.job_id, s.segment_index, r.wrapped, r.bound
         FROM job_segments s
         WHERE NOT r.runnable
           AND s.status = 'pending' AND s.priority = r.priority AND s.owner_id = r.owner_id
           AND s.job_id > r.job_id AND s.run_at <= now()
         ORDER BY s.priority, s.owner_id, s.job_id, s.segment_index
         LIMIT 1)
        UNION ALL
        -- The next user of this priority.
        (SELECT s.priority, s.owner_id, s.job_id, s.segment_index, r.wrapped, r.bound
         FROM job_segments s
         WHERE s.status = 'pending' AND s.priority = r.priority
           AND s.owner_id > r.owner_id AND s.owner_id < r.bound AND s.run_at <= now()
         ORDER BY s.priority, s.owner_id, s.job_id, s.segment_index
         LIMIT 1)
        UNION ALL
        -- Back to the head, once, up to the start.
        (SELECT s.priority, s.owner_id, s.job_id, s.segment_index, true, o.at
         FROM job_segments s
         WHERE NOT r.wrapped
           AND s.status = 'pending' AND s.priority = r.priority
           AND (s.owner_id, s.job_id, s.segment_index) >= (r.head_owner, r.head_job, r.head_index)
           AND s.owner_id < o.at AND s.run_at <= now()
         ORDER BY s.priority, s.owner_id, s.job_id, s.segment_index
         LIMIT 1)
        UNION ALL
        -- The next priority, from its lowest user id.
        (SELECT s.priority, s.owner_id, s.job_id, s.segment_index, true,
                'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid
         FROM job_segments s
         WHERE s.status = 'pending' AND s.priority > r.priority AND s.run_at <= now()
         ORDER BY s.priority, s.owner_id, s.job_id, s.segment_index
         LIMIT 1)
        LIMIT 1
    ) n
    LEFT JOIN LATERAL (
        SELECT j.job_type, j.run, j.segments_total,
               j.segments_total - j.segments_done AS unfinished, j.traceparent,
               n.segment_index AS first_ready
        FROM jobs j
        WHERE j.id = n.job_id
          AND j.status = 'running'
          AND j.step = 'segments'
          AND j.cancel_requested_at IS NULL
          AND ($3::text[] IS NULL OR j.job_type = ANY($3::text[]))
        LIMIT 1
    ) e ON true
), owners AS MATERIALIZED (
    SELECT w.priority, w.owner_id, w.job_id, w.first_ready, w.job_type, w.run,
           w.segments_total, w.unfinished, w.traceparent,
           coalesce(u.share_weight, 1) AS weight, u.max_running_segments AS ceiling
    FROM (SELECT *
          FROM walk
          WHERE job_id IS NOT NULL AND runnable
          LIMIT greatest(16, ($2::bigint + 3) / 4)) w
    LEFT JOIN LATERAL (
        SELECT u.share_weight, u.max_running_segments
        FROM users u
        WHERE u.id = w.owner_id
        LIMIT 1
    ) u ON true
), shares AS MATERIALIZED (
    SELECT w.priority, w.owner_id, w.job_id, w.first_ready, w.job_type, w.run,
           w.segments_total, w.unfinished, w.traceparent, w.ceiling,
           greatest(least(
               floor($2::numeric * w.upto / w.total + o.offset_rows::numeric)
                 - floor($2::numeric * (w.upto - w.weight) / w.total + o.offset_rows::numeric),
               CASE WHEN w.ceiling IS NULL THEN $2
                    ELSE w.ceiling - (SELECT count(*)
                                      FROM (SELECT 1
                                            FROM job_segments s
                                            WHERE s.owner_id = w.owner_id
                                              AND s.status = 'running'
                                            LIMIT w.ceiling) leased)
               END
           ), 0)::int AS share
    FROM (SELECT ow.*,
                 sum(ow.weight) OVER (PARTITION BY ow.priority ORDER BY ow.owner_id) AS upto,
                 sum(ow.weight) OVER (PARTITION BY ow.priority) AS total
          FROM owners ow) w
    CROSS JOIN origin o
), more AS (
    SELECT sh.priority, sh.owner_id, sh.job_id, sh.first_ready AS segment_index, 1 AS found,
           sh.share, sh.ceiling, true AS runnable, sh.job_type, sh.run, sh.segments_total,
           sh.unfinished, sh.traceparent, sh.first_ready
    FROM shares sh
    WHERE sh.share > 0
    UNION ALL
    SELECT n.priority, n.owner_id, n.job_id, n.segment_index,
           r.found + (e.first_ready IS NOT NULL)::int, r.share, r.ceiling, e.first_ready IS NOT NULL, e.job_type, e.run, e.segments_total,
           e.unfinished, e.traceparent, e.first_ready
    FROM more r
    CROSS JOIN LATERAL (
        SELECT s.priority, s.owner_id, s.job_id, s.segment_index
        FROM job_segments s
        WHERE r.found < r.share
          AND s.status = 'pending' AND s.priority = r.priority AND s.owner_id = r.owner_id
          AND s.job_id > r.job_id AND s.run_at <= now()
        ORDER BY s.priority, s.owner_id, s.job_id
        LIMIT 1
    ) n
    LEFT JOIN LATERAL (
        SELECT j.job_type, j.run, j.segments_total,
               j.segments_total - j.segments_done AS unfinished, j.traceparent,
               n.segment_index AS first_ready
        FROM jobs j
        WHERE j.id = n.job_id
          AND j.status = 'running'
          AND j.step = 'segments'
          AND j.cancel_requested_at IS NULL
          AND ($3::text[] IS NULL OR j.job_type = ANY($3::text[]))
        LIMIT 1
    ) e ON true
), runnable AS (
    -- Each of a user's runnable jobs gets an equal part of its share, the remainder going
    -- one row each to the first jobs of a random order: the parts add up to the share.
    SELECT m.priority, m.owner_id, m.job_id, m.first_ready, m.job_type, m.run,
           m.segments_total, m.traceparent, m.ceiling,
           least(m.unfinished, m.share / m.jobs + (m.k <= m.share % m.jobs)::int) AS part
    FROM (SELECT m.*,
                 count(*) OVER (PARTITION BY m.priority, m.owner_id) AS jobs,
                 row_number() OVER (PARTITION BY m.priority, m.owner_id ORDER BY random()) AS k
          FROM more m
          WHERE m.runnable) m
), picked AS MATERIALIZED (
    SELECT s.ctid, j.job_type, j.run, j.traceparent, j.owner_id, j.ceiling
    FROM (SELECT * FROM runnable WHERE part > 0 ORDER BY priority, random()) j
    -- Where this claim starts in the job (point 5).
    CROSS JOIN LATERAL (
        SELECT greatest(j.first_ready, floor(random() * j.segments_total)::int) AS at
    ) r
    CROSS JOIN LATERAL (
        -- From `at` onwards; the second part runs only if the first found too few.
        SELECT after.ctid
        FROM (SELECT s.ctid
              FROM job_segments s
              WHERE s.status = 'pending' AND s.priority = j.priority
                AND s.owner_id = j.owner_id AND s.job_id = j.job_id
                AND s.segment_index >= r.at AND s.run_at <= now()
              ORDER BY s.segment_index
              LIMIT j.part
              FOR UPDATE SKIP LOCKED) after
        UNION ALL
        SELECT before.ctid
        FROM (SELECT s.ctid
              FROM job_segments s
              WHERE s.status = 'pending' AND s.priority = j.priority
                AND s.owner_id = j.owner_id AND s.job_id = j.job_id
                AND s.segment_index >= j.first_ready AND s.segment_index < r.at
                AND s.run_at <= now()
              ORDER BY s.segment_index
              LIMIT j.part
              FOR UPDATE SKIP LOCKED) before
        LIMIT j.part
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
          s.attempts, s.max_attempts, s.input, picked.traceparent, picked.owner_id,
          picked.ceiling
