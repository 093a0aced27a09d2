-- Ends the jobs of $1 whose cancel was requested once nothing of them runs any more: no
-- job-level lease, no running segment. Returns (id, run) of each job cancelled, to refund.
-- Runs in the transaction that ended the last running piece, after the job row lock, so
-- the running-segment check sees every other completion that committed before it.
UPDATE jobs j
SET status = 'cancelled',
    finished_at = now(),
    updated_at = now()
WHERE j.id = ANY($1::uuid[])
  AND j.cancel_requested_at IS NOT NULL
  AND j.status IN ('pending', 'queued', 'running')
  AND j.locked_by IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM job_segments s WHERE s.job_id = j.id AND s.status = 'running'
  )
RETURNING j.id, j.run
