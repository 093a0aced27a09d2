-- Who owns project $1, to check a request's project_id belongs to the caller.
SELECT user_id FROM projects WHERE id = $1
