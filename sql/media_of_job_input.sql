-- The media file a job reads ($1 = jobs.input_media_id), for the pipeline's handlers:
-- where its bytes are, who owns it (its outputs are theirs too), what it was uploaded as,
-- its metadata (the seal of its upload), and whether its files are gone (expired, or
-- deleted by its owner: possible only when that raced the job's creation).
SELECT id, user_id, project_id, s3_key, media_type, mimetype, metadata,
       expired_at IS NOT NULL OR deleted_at IS NOT NULL AS gone
FROM media_files WHERE id = $1
