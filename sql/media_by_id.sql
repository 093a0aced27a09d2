-- One media file. duration_seconds is numeric in the schema; float8 is precise enough for
-- a duration and needs no decimal type in Rust.
SELECT id, user_id, project_id, s3_key, media_type, duration_seconds::float8, size_bytes,
       mimetype, metadata, created_at, derived_from, expired_at, deleted_at
FROM media_files WHERE id = $1
