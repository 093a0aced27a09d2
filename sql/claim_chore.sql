-- Takes storage chore $1 for worker $3 if it is due, and puts its next run $2 seconds
-- away, so no other worker takes it meanwhile; a worker that dies in the middle only
-- delays the next pass. Returns the chore when taken. SKIP LOCKED: a worker that finds
-- another taking it goes on at once.
WITH due AS (
    SELECT name FROM storage_chores
    WHERE name = $1 AND next_run_at <= now()
    FOR UPDATE SKIP LOCKED
)
UPDATE storage_chores c
SET next_run_at = now() + make_interval(secs => $2),
    last_started_at = now(),
    last_worker = $3
FROM due
WHERE c.name = due.name
RETURNING c.name
