-- Segment rows of completed jobs are pruned past worker.segment_retention_seconds, so the
-- queue's hot table holds the work in hand, not the whole history (the jobs themselves,
-- media and the ledger are the product's records and are kept). A job remembers that its
-- segments are gone; the partial index finds those still to prune, oldest first.
ALTER TABLE jobs ADD COLUMN segments_pruned boolean NOT NULL DEFAULT false;
CREATE INDEX jobs_prunable_idx ON jobs (finished_at)
  WHERE status = 'completed' AND NOT segments_pruned;
