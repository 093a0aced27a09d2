-- Gives back what the claim of this transaction leased beyond a user's ceiling: $1/$2 are
-- the segments it leased (id, owner), $3/$4 the users with a ceiling among them (owner,
-- max_running_segments). Runs after lock_owners.sql, as a statement of its own, so that
-- its count sees every leased segment of those users that another claim committed while
-- this one waited for the lock. Returns the ids given back: the segments are pending
-- again as if never claimed (their attempt is not counted), and nothing else saw them
-- leased since this transaction has not committed.
WITH over AS (
    SELECT c.owner_id,
           (SELECT count(*)
            FROM job_segments s
            WHERE s.owner_id = c.owner_id AND s.status = 'running') - c.ceiling AS excess
    FROM unnest($3::uuid[], $4::int[]) AS c(owner_id, ceiling)
), released AS (
    SELECT x.id
    FROM over o
    CROSS JOIN LATERAL (
        SELECT c.id
        FROM unnest($1::uuid[], $2::uuid[]) AS c(id, owner_id)
        WHERE c.owner_id = o.owner_id
        LIMIT greatest(o.excess, 0)
    ) x
)
UPDATE job_segments s
SET status = 'pending',
    locked_by = NULL,
    lease_expires_at = NULL,
    attempts = s.attempts - 1,
    updated_at = now()
FROM released r
WHERE s.id = r.id
RETURNING s.id
