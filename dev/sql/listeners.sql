-- LISTEN connections to this database by channel: a LISTEN connection runs nothing else,
-- so its last statement is its LISTEN. Workers hold `LISTEN octavia_work`, API processes
-- `LISTEN octavia_job_events`; the chaos scenarios count them back after a fault.
SELECT query, count(*)::bigint
FROM pg_stat_activity
WHERE datname = current_database()
  AND backend_type = 'client backend'
  AND query IN ('LISTEN octavia_work', 'LISTEN octavia_job_events')
GROUP BY query
