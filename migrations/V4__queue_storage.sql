-- Storage settings of the two hot tables, measured with bin/bench.
--
-- jobs: every batch of completed segments adds to its jobs' counters (segments_done,
-- progress, updated_at), which no index covers; with free space on the page that update
-- is a HOT update (no index entries, no new page). fillfactor 70 leaves the room.
ALTER TABLE jobs SET (fillfactor = 70);

-- Both tables churn: each segment is updated three to four times in seconds, each job
-- five or more. Vacuum and analyze them after a small fraction of changes, without cost
-- delays, so dead tuples and stale statistics do not pile up under load.
ALTER TABLE jobs SET (
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE job_segments SET (
  autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_analyze_scale_factor = 0.02,
  autovacuum_vacuum_cost_delay = 0
);
