-- Renews every lease worker $1 holds, in one statement, for $2 more seconds.
-- $3/$4: (id, attempt) of its segments; $5/$6: (id, attempt) of its job-level steps.
-- A lease is renewed only while the row is still this attempt's (fenced like every write),
-- so a row that was rescued and claimed again is not renewed for the old attempt.
-- Returns each lease still held, with `stop` set when its job is being cancelled or has
-- already failed: the worker tells those handlers to stop. A lease missing from the
-- answer was lost.
--
-- Segment rows are taken with SKIP LOCKED, so this statement never waits for them. The
-- worker's completer writes the same rows meanwhile, in its own order; a heartbeat
-- waiting for them could deadlock with it (two statements locking the same rows in their
-- lists' orders did, found by `octavia chaos kills`). A row another transaction holds is
-- being written right now: recorded by the completer, or locked by a claim that will find
-- it running and leave it. It is not renewed this time; read as last committed, it is
-- reported held if it is still this attempt's (`busy`), so its handler is not told its
-- lease was lost, and the next heartbeat renews it, well within the lease.
WITH locked_segs AS MATERIALIZED (
    -- Found by key only, and the lease checked on the locked values (why: see the fence
    -- in complete_segments.sql). Each lease carries its attempt along, so the update
    -- reads this alone.
    SELECT s.id, s.status, s.attempts, s.locked_by, h.attempt
    FROM unnest($3::uuid[], $4::int[]) AS h(id, attempt)
    JOIN job_segments s ON s.id = h.id
    FOR UPDATE OF s SKIP LOCKED
), segs AS (
    UPDATE job_segments s
    SET lease_expires_at = now() + make_interval(secs => $2)
    FROM locked_segs l
    WHERE s.id = l.id AND l.attempts = l.attempt
      AND l.status = 'running' AND l.locked_by = $1
      -- Checked again on the row written (no index reads attempts): the update must not
      -- land on a newer version than the one locked above (see `steps`).
      AND s.attempts = l.attempt
    RETURNING s.id, s.job_id
), busy AS (
    -- The leases skipped above that are still this attempt's, as last committed. The
    -- fence is a CASE for the reason given in complete_segments.sql.
    SELECT s.id, s.job_id
    FROM unnest($3::uuid[], $4::int[]) AS h(id, attempt)
    JOIN job_segments s ON s.id = h.id
    WHERE NOT EXISTS (SELECT 1 FROM locked_segs l WHERE l.id = h.id)
      AND CASE WHEN s.status = 'running' AND s.locked_by = $1 THEN s.attempts END = h.attempt
), locked_steps AS MATERIALIZED (
    -- Job rows likewise, in id order, as every statement writing several jobs locks them,
    -- found by key only.
    SELECT j.id, j.status, j.attempts, j.locked_by, h.attempt
    FROM unnest($5::uuid[], $6::int[]) AS h(id, attempt)
    JOIN jobs j ON j.id = h.id
    ORDER BY j.id
    FOR UPDATE OF j
), steps AS (
    UPDATE jobs j
    SET lease_expires_at = now() + make_interval(secs => $2)
    FROM locked_steps l
    WHERE j.id = l.id AND l.attempts = l.attempt
      AND l.status = 'running' AND l.locked_by = $1
      -- Checked again on the row written: a bin/bench soak once had this update renew a
      -- plan's lease on the version its recording had just written (lease cleared,
      -- attempts reset), which the jobs_lease_check constraint refused, failing the whole
      -- heartbeat. No index reads attempts, so this cannot steer the plan to one.
      AND j.attempts = l.attempt
    RETURNING j.id, j.cancel_requested_at IS NOT NULL AS stop
)
SELECT held.id, false AS is_step,
       (j.cancel_requested_at IS NOT NULL OR j.status <> 'running') AS stop
FROM (SELECT id, job_id FROM segs UNION ALL SELECT id, job_id FROM busy) held
JOIN jobs j ON j.id = held.job_id
UNION ALL
SELECT steps.id, true, steps.stop FROM steps
