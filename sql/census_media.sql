-- What the orphan pass needs to know of media files $1: whether each is an output (made by
-- a job) or an upload, whether its objects should be gone (expired or deleted), and every
-- key it names: its own and those of the files listed in metadata.files (an object, or a
-- bare key in rows written before sizes were recorded).
SELECT m.id,
       (m.derived_from IS NOT NULL OR m.metadata ? 'job_id') AS output,
       (m.expired_at IS NOT NULL OR m.deleted_at IS NOT NULL) AS gone,
       ARRAY(
           SELECT m.s3_key
           UNION
           SELECT coalesce(f.value ->> 'key', f.value #>> '{}')
           FROM jsonb_each(CASE WHEN jsonb_typeof(m.metadata -> 'files') = 'object'
                                THEN m.metadata -> 'files' ELSE '{}'::jsonb END) AS f
       ) AS keys
FROM media_files m
WHERE m.id = ANY($1)
