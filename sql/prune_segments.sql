-- Deletes the segment rows of up to $2 jobs that completed more than $1 seconds ago (their
-- results were only needed to assemble the output, and a completed job is never resumed),
-- and marks those jobs pruned. Jobs that failed or were cancelled keep their segments:
-- a retry resumes from them. SKIP LOCKED: every worker runs this, and they pass over
-- each other's jobs. Returns (jobs pruned, segment rows deleted).
WITH victims AS MATERIALIZED (
    SELECT id
    FROM jobs
    WHERE status = 'completed' AND NOT segments_pruned
      AND finished_at < now() - make_interval(secs => $1)
    ORDER BY finished_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM job_segments s
    USING victims v
    WHERE s.job_id = v.id
    RETURNING 1
), marked AS (
    UPDATE jobs j SET segments_pruned = true
    FROM victims v
    WHERE j.id = v.id
    RETURNING 1
)
SELECT (SELECT count(*) FROM marked)::bigint AS jobs, (SELECT count(*) FROM gone)::bigint AS rows
