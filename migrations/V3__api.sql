-- The HTTP API's own columns and tables: bearer-token sessions, idempotent job creation,
-- cursor pagination of a user's jobs, and the notification behind live job progress.

-- A session is found by the SHA-256 of its bearer token; the token itself is shown once
-- and never stored, so a leaked copy of this table cannot be used to sign in.
ALTER TABLE sessions
  ADD COLUMN token_hash bytea,
  ADD COLUMN expires_at timestamptz;
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (token_hash);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- One row per Idempotency-Key a user sent with POST /api/jobs. Inserted in the
-- transaction that creates the job, so the key exists exactly when its job does; the
-- primary key makes a concurrent duplicate fail with a unique violation (and charge
-- nothing) instead of creating a second job. request_hash is the SHA-256 of the request
-- body in canonical form: the same key with another body is a conflict, not a replay.
CREATE TABLE idempotency_keys (
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  key text NOT NULL,
  request_hash bytea NOT NULL,
  -- Deferred: the key row is written before its job, to claim the key first.
  job_id uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);

-- GET /api/jobs pages through a user's jobs newest first with a (created_at, id) cursor.
CREATE INDEX jobs_user_id_created_at_idx ON jobs (user_id, created_at DESC, id DESC);

-- A user's projects, newest first.
CREATE INDEX projects_user_id_idx ON projects (user_id, created_at DESC);

-- Live progress (GET /api/jobs/:id/events): every change of a job's status or progress
-- notifies its id, and API processes LISTEN and re-read the row. The WHEN clause keeps
-- the trigger off the many updates that change neither (heartbeats, lease renewals,
-- segment bookkeeping), and a notification is queued only when the transaction commits.
CREATE FUNCTION octavia_notify_job_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('octavia_job_events', NEW.id::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_event
  AFTER UPDATE OF status, progress ON jobs
  FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.progress IS DISTINCT FROM NEW.progress)
  EXECUTE FUNCTION octavia_notify_job_event();
