-- The queue's own columns on jobs and job_segments, and the partial indexes that the
-- claim and rescue statements in sql/ read. See README "Queue" for the state machines.

-- Which job-level step a job is at. plan and finalize are claimed from `jobs`;
-- during `segments` the work is claimed from `job_segments`.
CREATE TYPE job_step AS ENUM ('plan', 'segments', 'finalize', 'done');

ALTER TABLE jobs
  ADD COLUMN step job_step NOT NULL DEFAULT 'plan',
  -- Lower runs first.
  ADD COLUMN priority smallint NOT NULL DEFAULT 0,
  -- Not claimable before this instant (delayed jobs, retry backoff).
  ADD COLUMN run_at timestamptz NOT NULL DEFAULT now(),
  -- Attempts of the current job-level step; the fencing token of its lease.
  ADD COLUMN attempts int NOT NULL DEFAULT 0,
  ADD COLUMN max_attempts int NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
  ADD COLUMN locked_by text,
  ADD COLUMN lease_expires_at timestamptz,
  ADD COLUMN last_error text,
  ADD COLUMN cancel_requested_at timestamptz,
  ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
  -- Counted here so the completion of the last segment can move the job to finalize in the
  -- same statement, without counting rows.
  ADD COLUMN segments_total int NOT NULL DEFAULT 0,
  ADD COLUMN segments_done int NOT NULL DEFAULT 0,
  -- Incremented by each retry of a failed or cancelled job. Credits are reserved and
  -- refunded per run (see credits_history_job_run_key).
  ADD COLUMN run int NOT NULL DEFAULT 1,
  ADD CONSTRAINT jobs_lease_check CHECK ((locked_by IS NULL) = (lease_expires_at IS NULL)),
  ADD CONSTRAINT jobs_progress_check CHECK (progress BETWEEN 0 AND 100);

-- Job-level steps ready to be claimed, in claim order. Exactly the claim's predicate.
CREATE INDEX jobs_claim_idx ON jobs (priority, run_at)
  WHERE locked_by IS NULL AND step IN ('plan', 'finalize') AND status IN ('queued', 'running');
-- Expired job-level leases, for the rescuer.
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE locked_by IS NOT NULL;

ALTER TABLE job_segments
  -- What the plan step gave this segment to work on (its handler's parameters).
  ADD COLUMN input jsonb,
  -- Copied from the job so the claim orders segments without reading jobs.
  ADD COLUMN priority smallint NOT NULL DEFAULT 0,
  ADD COLUMN run_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN attempts int NOT NULL DEFAULT 0,
  ADD COLUMN max_attempts int NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
  ADD COLUMN locked_by text,
  ADD COLUMN lease_expires_at timestamptz,
  ADD COLUMN last_error text,
  ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
  ADD CONSTRAINT job_segments_status_check
    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled'));

-- The fair claim walks the distinct (priority, job_id) of pending segments with a loose
-- index scan, then takes each job's lowest pending indexes: both read only this index.
CREATE INDEX job_segments_claim_idx ON job_segments (priority, job_id, segment_index)
  WHERE status = 'pending';
-- Expired segment leases, for the rescuer.
CREATE INDEX job_segments_lease_idx ON job_segments (lease_expires_at)
  WHERE status = 'running';

-- A balance never goes below zero, whatever the code above it does.
ALTER TABLE users ADD CONSTRAINT users_credits_nonnegative CHECK (credits >= 0);

-- The run of the job a reservation or refund belongs to. With the unique index, a run has
-- at most one job_reserve and one job_refund, however often a refund is attempted.
ALTER TABLE credits_history ADD COLUMN job_run int;
CREATE UNIQUE INDEX credits_history_job_run_key ON credits_history (job_id, job_run, reason)
  WHERE job_id IS NOT NULL;
CREATE INDEX credits_history_user_id_idx ON credits_history (user_id, created_at);
