-- The worker's queue sessions (claims, segment and plan completions: the statements that
-- change most jobs' status and progress) set `octavia.job_events = 'deferred'` and
-- notify `octavia_job_events` themselves after they commit, one notification for many
-- jobs (octavia::queue::job_events). A notification sent inside those transactions would
-- take PostgreSQL's one notification lock at each commit and hold it through the commit,
-- serialising the worker's writers on it, and run this trigger's function once per row.
-- Every other session (the API, the CLI, the worker's other statements) is notified by
-- the trigger as before.
DROP TRIGGER jobs_notify_event ON jobs;
CREATE TRIGGER jobs_notify_event
  AFTER UPDATE OF status, progress ON jobs
  FOR EACH ROW
  WHEN ((OLD.status IS DISTINCT FROM NEW.status OR OLD.progress IS DISTINCT FROM NEW.progress)
        AND current_setting('octavia.job_events', true) IS DISTINCT FROM 'deferred')
  EXECUTE FUNCTION octavia_notify_job_event();
