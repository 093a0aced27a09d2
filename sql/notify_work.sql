-- Wakes idle workers. Sent inside the transaction that made work ready, so it arrives only
-- if that transaction commits; PostgreSQL folds identical notifications of one transaction
-- into one.
SELECT pg_notify('octavia_work', '')
