-- Starts a new run of failed or cancelled job $1 from where it stopped: the step it was at
-- is claimable again with fresh attempts, and `run` moves on so the new run reserves and
-- may refund its own credits. Completed segments are untouched (reset_segments.sql resets
-- only the others). A job whose intermediate objects were swept (its last run is
-- `swept_run`) has nothing left to resume from: it plans again from its input, and the
-- caller deletes its segments. Returns the new run, its cost and owner for the
-- reservation, and whether it plans again.
UPDATE jobs
SET status = CASE WHEN step = 'plan' OR swept_run = run THEN 'queued'::job_status
                  ELSE 'running'::job_status END,
    step = CASE WHEN swept_run = run THEN 'plan'::job_step ELSE step END,
    segments_total = CASE WHEN swept_run = run THEN 0 ELSE segments_total END,
    segments_done = CASE WHEN swept_run = run THEN 0 ELSE segments_done END,
    progress = CASE WHEN swept_run = run THEN 0 ELSE progress END,
    run = run + 1,
    attempts = 0,
    locked_by = NULL,
    lease_expires_at = NULL,
    last_error = NULL,
    cancel_requested_at = NULL,
    finished_at = NULL,
    run_at = now(),
    updated_at = now()
WHERE id = $1 AND status IN ('failed', 'cancelled')
RETURNING run, coalesce(cost_credits, 0) AS cost_credits, user_id,
          swept_run IS NOT DISTINCT FROM run - 1 AS replan
