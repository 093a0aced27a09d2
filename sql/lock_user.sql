-- Locks user $1's row for the rest of the transaction and returns the balance. Job
-- creation takes this lock first, so the balance it prices against cannot change before
-- the debit, and concurrent creations by one user run one after another.
SELECT coalesce(credits, 0) FROM users WHERE id = $1 FOR UPDATE
