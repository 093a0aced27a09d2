-- The chaos "connections killed" fault: terminates every other client connection to this
-- database (pools and LISTEN connections alike, of every process). Returns how many.
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::bigint
FROM pg_stat_activity
WHERE datname = current_database()
  AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
