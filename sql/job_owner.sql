-- Who owns job $1, to answer 404 for other users' jobs.
SELECT user_id FROM jobs WHERE id = $1
