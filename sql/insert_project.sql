-- Creates a project of user $1.
INSERT INTO projects (id, user_id, name, description)
VALUES ($1, $2, $3, $4)
RETURNING id, name, description, created_at
