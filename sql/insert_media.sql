-- Records a file in the object store. duration_seconds is numeric in the schema; the
-- float parameter is cast so callers need no decimal type.
INSERT INTO media_files (id, project_id, user_id, s3_key, media_type, duration_seconds,
                         size_bytes, mimetype, derived_from, metadata)
VALUES ($1, $2, $3, $4, $5, $6::float8::numeric, $7, $8, $9, $10)
