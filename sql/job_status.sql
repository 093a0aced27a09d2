-- One job's status, for commands that must say why they refused.
SELECT status::text, step::text FROM jobs WHERE id = $1
