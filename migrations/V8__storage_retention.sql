-- What the sweeper needs to delete stored objects that nothing needs any more (see
-- docs/storage.md).

-- The last run of a job whose intermediate objects (jobs/{id}/plan/{run}-{attempt}/…,
-- jobs/{id}/segments/{index}/{run}-{attempt}/…) are no longer needed and are deleted:
-- every object of that run and the runs before it. Set when a job completes, and by the
-- sweeper once a failed or cancelled job is past its retention. A retry moves `run` on,
-- so a new run's objects are never among them, and a job whose last run was swept plans
-- again from its input.
ALTER TABLE jobs ADD COLUMN swept_run int;
UPDATE jobs SET swept_run = run WHERE status = 'completed';
-- The keys under jobs/{id}/ that job `job`'s segments name (their inputs, which the plan
-- wrote, and their results): what a sweep keeps while the job may resume, or deletes with
-- its run. Every string anywhere in the JSON counts, so no job type needs to say where.
-- STABLE: it reads with the snapshot of the statement that calls it, so the orphan pass's
-- census sees the segments and the jobs at the same instant.
CREATE FUNCTION octavia_segment_keys(job uuid) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(DISTINCT k.value #>> '{}'), '{}')
    FROM job_segments s
    CROSS JOIN LATERAL jsonb_path_query(
        jsonb_build_array(s.input, s.result), 'strict $.** ? (@.type() == "string")'
    ) AS k(value)
    WHERE s.job_id = job AND k.value #>> '{}' LIKE 'jobs/' || job::text || '/%'
$$;

-- Failed and cancelled jobs whose intermediates are still stored, oldest first.
CREATE INDEX jobs_sweep_idx ON jobs (finished_at)
  WHERE status IN ('failed', 'cancelled') AND swept_run IS DISTINCT FROM run;

-- When a media file's objects were deleted by the retention policy: the row stays, the
-- API reports it `expired` and answers 410 Gone for its download.
ALTER TABLE media_files ADD COLUMN expired_at timestamptz;
-- When its owner deleted it. Its objects are gone; the row stays only while a job (as its
-- input or output) or another file (derived from it) names it, and the API answers 404.
ALTER TABLE media_files ADD COLUMN deleted_at timestamptz;
CREATE INDEX media_files_retention_idx ON media_files (created_at) WHERE expired_at IS NULL;

-- Chores one worker of the fleet does at a time, every so often: listing the whole store
-- for orphans. A worker takes one by moving `next_run_at` on (FOR UPDATE SKIP LOCKED), so
-- a worker that dies in the middle only delays the next pass.
CREATE TABLE storage_chores (
  name text PRIMARY KEY,
  next_run_at timestamptz NOT NULL DEFAULT now(),
  last_started_at timestamptz,
  last_finished_at timestamptz,
  last_worker text,
  -- What the last pass found and did (objects and bytes by kind), or why it failed.
  last_report jsonb
);
INSERT INTO storage_chores (name) VALUES ('orphans');

-- Deleting a media file checks the rows that name it (foreign keys, and the API's refusal
-- while a job in progress uses it); expiry skips uploads a job in progress reads. Without
-- these each of them reads all of jobs or media_files. Partial: a job without media (the
-- queue's own no-op jobs) costs no index entry.
CREATE INDEX jobs_input_media_id_idx ON jobs (input_media_id) WHERE input_media_id IS NOT NULL;
CREATE INDEX jobs_output_media_id_idx ON jobs (output_media_id)
  WHERE output_media_id IS NOT NULL;
CREATE INDEX media_files_derived_from_idx ON media_files (derived_from)
  WHERE derived_from IS NOT NULL;
-- Deleting a project sets its jobs' project_id to NULL (and first refuses while one is in
-- progress): found here rather than by reading every job.
CREATE INDEX jobs_project_id_idx ON jobs (project_id) WHERE project_id IS NOT NULL;
