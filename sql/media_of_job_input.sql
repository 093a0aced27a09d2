-- The media file a job reads ($1 = jobs.input_media_id), for the pipeline's handlers:
-- where its bytes are, who owns it (its outputs are theirs too), what it was uploaded as,
-- and its metadata (the seal of its upload).
SELECT id, user_id, project_id, s3_key, media_type, mimetype, metadata
FROM media_files WHERE id = $1
