-- Job webhooks (docs/api.md#webhooks): endpoints a user registers, and the deliveries of
-- the events of their jobs, which workers claim with SKIP LOCKED like any other work.

-- An endpoint: where the events `events` of its user's jobs (of one project, or all) are
-- sent. `secret` is the HMAC key itself, not a hash as for tokens and API keys: the
-- workers need it to sign. After a rotation the previous key keeps signing too until
-- previous_secret_expires_at, so a receiver can switch without rejecting deliveries.
CREATE TABLE webhook_endpoints (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  -- Only jobs of this project; NULL: every job of the user.
  project_id uuid REFERENCES projects(id) ON DELETE CASCADE,
  url text NOT NULL,
  events text[] NOT NULL CHECK (
    cardinality(events) > 0
    AND events <@ ARRAY['job.completed', 'job.failed', 'job.cancelled', 'job.progress']
  ),
  secret bytea NOT NULL,
  previous_secret bytea,
  previous_secret_expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  secret_rotated_at timestamptz
);

-- Listings, and the trigger below: what endpoints the user of a job that ended has.
CREATE INDEX webhook_endpoints_user_idx ON webhook_endpoints (user_id, created_at);

-- One event to one endpoint. Its id is the `webhook-id` of every attempt, so a receiver
-- can tell a retry from a new event. `data` is the job as it was when the event happened.
--
-- A delivery is leased the way SQS hides a message: the claim moves run_at to the end of
-- the lease and sets locked_by. A worker that dies mid-delivery leaves a pending row whose
-- run_at passes when the lease ends, and the next claim takes it: no rescue statement is
-- needed. Each attempt's outcome is written fenced on `attempts`, so a worker whose lease
-- ran out cannot overwrite its successor's.
CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  endpoint_id uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  event text NOT NULL,
  data jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- pending (due at run_at, or leased to locked_by until then), delivered, failed (given
  -- up after webhooks.retry_for_seconds).
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  run_at timestamptz NOT NULL DEFAULT now(),
  attempts int NOT NULL DEFAULT 0,
  locked_by text,
  last_attempt_at timestamptz,
  -- The HTTP status of the last attempt; NULL when it got no answer.
  last_status int,
  last_error text,
  delivered_at timestamptz
);

-- The claim: due deliveries in order, exactly its predicate.
CREATE INDEX webhook_deliveries_claim_idx ON webhook_deliveries (run_at)
  WHERE status = 'pending';
-- An endpoint's history, newest first.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at);
-- Pruning the history of finished deliveries.
CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (created_at)
  WHERE status <> 'pending';

-- Writes the deliveries of the event of a job row that changed (AFTER UPDATE, NEW and
-- OLD): its end when its status became completed, failed or cancelled, else its progress.
-- One row per endpoint of the job's user that takes the event and covers the job's
-- project. It runs in the statement's own transaction, whichever statement ended the job
-- (completion, failure, cancel, rescue, the CLI), so an event is recorded exactly when
-- the change commits. A user without endpoints costs one index probe.
CREATE FUNCTION octavia_webhook_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  event text := CASE
    WHEN NEW.status IS DISTINCT FROM OLD.status THEN 'job.' || NEW.status::text
    ELSE 'job.progress'
  END;
BEGIN
  INSERT INTO webhook_deliveries (endpoint_id, job_id, event, data)
  SELECT e.id, NEW.id, event, jsonb_build_object(
           'id', NEW.id,
           'user_id', NEW.user_id,
           'project_id', NEW.project_id,
           'job_type', NEW.job_type,
           'status', NEW.status::text,
           'progress', NEW.progress,
           'error', NEW.last_error,
           'run', NEW.run,
           'input_media_id', NEW.input_media_id,
           'output_media_id', NEW.output_media_id,
           'created_at', NEW.created_at,
           'started_at', NEW.started_at,
           'finished_at', NEW.finished_at)
  FROM webhook_endpoints e
  WHERE e.user_id = NEW.user_id
    AND event = ANY (e.events)
    AND (e.project_id IS NULL OR e.project_id IS NOT DISTINCT FROM NEW.project_id);
  RETURN NULL;
END
$$;

-- The conditions are the triggers' WHEN, evaluated without calling the function, so the
-- updates that are no event (a lease renewed, a segment that moves progress within the
-- same tenth) cost nothing more.
CREATE TRIGGER jobs_webhook_ended
  AFTER UPDATE OF status ON jobs
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status
        AND NEW.status IN ('completed', 'failed', 'cancelled')
        AND NEW.user_id IS NOT NULL)
  EXECUTE FUNCTION octavia_webhook_job_event();

-- job.progress when a running job crosses a tenth (10 %, 20 % … 90 %): at most nine
-- events per run, however many segments it has. 100 % is job.completed's.
CREATE TRIGGER jobs_webhook_progress
  AFTER UPDATE OF progress ON jobs
  FOR EACH ROW
  WHEN (NEW.status = 'running'
        AND OLD.status = 'running'
        AND OLD.progress / 10 < NEW.progress / 10
        AND NEW.progress < 100
        AND NEW.user_id IS NOT NULL)
  EXECUTE FUNCTION octavia_webhook_job_event();
