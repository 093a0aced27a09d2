-- The media file a job reads ($1 = jobs.input_media_id), for the pipeline's handlers:
-- where its bytes are, who owns it (its outputs are theirs too) and what it was uploaded as.
SELECT id, user_id, project_id, s3_key, media_type, mimetype
FROM media_files WHERE id = $1
