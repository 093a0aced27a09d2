-- Records what the completed upload $1 turned out to be: its size, duration and media type,
-- and what inspecting it found (merged into metadata, with "upload": "complete").
UPDATE media_files
SET size_bytes = $2,
    duration_seconds = $3::float8::numeric,
    mimetype = $4,
    metadata = coalesce(metadata, '{}'::jsonb) || $5::jsonb
WHERE id = $1
