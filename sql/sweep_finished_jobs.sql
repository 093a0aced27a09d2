-- Claims up to $2 failed or cancelled jobs whose intermediate objects are still stored
-- and that finished more than $1 seconds ago (until then a retry resumes from them; a
-- completed job is marked swept when it completes, see complete_jobs.sql). Each is
-- marked swept for its current run in this statement, and returned with the keys under
-- jobs/{id}/ that its segments name (their inputs, which the plan wrote, and their
-- results), for the caller to delete after the commit; a retry of a swept job plans it
-- again under a new run, whose keys are never among these. Objects no segment names (of
-- attempts that lost their lease, of plans that failed) are left to the orphan pass.
-- SKIP LOCKED: every worker runs this, and passes over the jobs another is sweeping.
WITH victims AS MATERIALIZED (
    SELECT id, run
    FROM jobs
    WHERE status IN ('failed', 'cancelled') AND swept_run IS DISTINCT FROM run
      AND finished_at < now() - make_interval(secs => $1)
    ORDER BY finished_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), marked AS (
    UPDATE jobs j SET swept_run = j.run
    FROM victims v
    WHERE j.id = v.id
    RETURNING j.id
)
SELECT v.id, v.run,
       octavia_segment_keys(v.id) AS keys
FROM victims v
