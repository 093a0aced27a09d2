-- Deletes up to 16 request counters whose windows ended. Run after a count that opened a
-- window, the only time a row is added or renewed, so the table holds little more than
-- the live windows without a sweeper. Its own statement, not part of the count: holding
-- these rows' locks while waiting for the counted ones could deadlock with another count.
-- SKIP LOCKED leaves a row another request is counting or deleting to that request.
DELETE FROM request_limits
WHERE (kind, key) IN (
    SELECT kind, key FROM request_limits
    WHERE window_end < now()
    ORDER BY window_end
    LIMIT 16
    FOR UPDATE SKIP LOCKED
)
