-- Deletes media files $1 for their owner. A row no job (as its input or output) and no
-- other file (derived from it) names is deleted; the others stay, marked deleted and
-- detached from their project, and from their owner too when $2 (the owner is being
-- deleted), so the jobs and the ledger that name them keep their history. Returns every
-- row's key and metadata, for the caller to delete its objects after the commit (what a
-- crash leaves there, the orphan pass deletes: no row names it, or its row is deleted).
WITH target AS MATERIALIZED (
    SELECT m.id, m.s3_key, m.metadata,
           EXISTS (SELECT 1 FROM jobs j WHERE j.input_media_id = m.id)
           OR EXISTS (SELECT 1 FROM jobs j WHERE j.output_media_id = m.id)
           OR EXISTS (SELECT 1 FROM media_files d WHERE d.derived_from = m.id) AS named
    FROM media_files m
    WHERE m.id = ANY($1)
    FOR UPDATE OF m
), removed AS (
    DELETE FROM media_files m
    USING target t
    WHERE m.id = t.id AND NOT t.named
    RETURNING m.id
), marked AS (
    UPDATE media_files m
    SET deleted_at = coalesce(m.deleted_at, now()),
        project_id = NULL,
        user_id = CASE WHEN $2 THEN NULL ELSE m.user_id END
    FROM target t
    WHERE m.id = t.id AND t.named
    RETURNING m.id
)
SELECT t.id, t.s3_key, t.metadata, t.named FROM target t
