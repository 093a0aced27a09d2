-- The media files of project $1 or of user $2 (the other NULL), locked, before deleting
-- the project or the user: a file added meanwhile waits, then finds its project or owner
-- gone.
SELECT id FROM media_files
WHERE project_id = $1 OR user_id = $2
FOR UPDATE
