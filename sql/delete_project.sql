-- Deletes project $1 (after its media files): its jobs stay, their project_id set to NULL.
DELETE FROM projects WHERE id = $1
