-- Claims up to $3 media files past their retention: outputs (made by a job) created more
-- than $1 days ago, uploads more than $2 days ago, uploads never completed more than $4
-- days ago (0 keeps that kind forever). An upload
-- that a job still in progress reads is kept until the job ends. Marked expired in this
-- statement (the row stays: jobs and ledger entries name it) and returned with every key
-- it names, for the caller to delete after the commit; a crash in between leaves objects
-- of an expired row, which the orphan pass deletes. SKIP LOCKED: every worker runs this.
WITH victims AS MATERIALIZED (
    SELECT m.id
    FROM media_files m
    WHERE m.expired_at IS NULL AND m.deleted_at IS NULL
      AND CASE WHEN m.derived_from IS NOT NULL OR m.metadata ? 'job_id'
               THEN $1 > 0 AND m.created_at < now() - make_interval(days => $1)
               WHEN m.metadata ->> 'upload' = 'pending'
               THEN ($4 > 0 AND m.created_at < now() - make_interval(days => $4))
                    OR ($2 > 0 AND m.created_at < now() - make_interval(days => $2))
               ELSE $2 > 0 AND m.created_at < now() - make_interval(days => $2)
          END
      AND NOT EXISTS (
          SELECT 1 FROM jobs j
          WHERE j.input_media_id = m.id AND j.status IN ('pending', 'queued', 'running')
      )
    ORDER BY m.created_at
    LIMIT $3
    FOR UPDATE OF m SKIP LOCKED
)
UPDATE media_files m SET expired_at = now()
FROM victims v
WHERE m.id = v.id
RETURNING m.id, m.s3_key, m.metadata
