-- Why dead row versions of the queue's tables would never be vacuumed, one row per
-- problem. Every claim and completion leaves one behind per row; without autovacuum they
-- pile up in the heap and the claim index, and every claim steps over more of them.
SELECT 'autovacuum is off on this server (autovacuum = off)' AS problem
WHERE NOT current_setting('autovacuum')::bool
UNION ALL
SELECT 'statistics collection is off on this server (track_counts = off): autovacuum '
       || 'cannot see dead rows'
WHERE NOT current_setting('track_counts')::bool
UNION ALL
SELECT format('autovacuum is disabled on table %s (autovacuum_enabled = false)', c.relname)
FROM pg_class c
CROSS JOIN LATERAL pg_options_to_table(c.reloptions) o
WHERE c.oid IN ('jobs'::regclass, 'job_segments'::regclass)
  AND o.option_name = 'autovacuum_enabled' AND NOT o.option_value::bool
ORDER BY 1
