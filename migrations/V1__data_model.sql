-- The data model Octavia was created from (shared/seed/data_model.md), as written there:
-- eight tables, two enums, three lookup indexes. Later migrations add the queue's and the
-- API's own columns; they never change these.

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text UNIQUE NOT NULL,
  password_hash text NOT NULL,
  is_verified boolean DEFAULT FALSE,
  credits bigint DEFAULT 0,
  role text DEFAULT 'user',
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz DEFAULT now()
);

CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES users(id) ON DELETE CASCADE,
  user_agent text,
  ip_address text,
  created_at timestamptz DEFAULT now(),
  last_seen timestamptz
);

CREATE TABLE projects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES users(id) ON DELETE CASCADE,
  name text,
  description text,
  created_at timestamptz DEFAULT now()
);

CREATE TABLE media_files (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid REFERENCES users(id) ON DELETE CASCADE,
  s3_key text NOT NULL,
  media_type text,
  duration_seconds numeric,
  size_bytes bigint,
  mimetype text,
  derived_from uuid NULL REFERENCES media_files(id),
  metadata jsonb DEFAULT '{}'::jsonb,
  created_at timestamptz DEFAULT now()
);

CREATE TYPE job_status AS ENUM ('pending','queued','running','failed','completed','cancelled');

CREATE TABLE jobs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  project_id uuid REFERENCES projects(id) ON DELETE SET NULL,
  job_type text NOT NULL,
  status job_status DEFAULT 'pending',
  progress int DEFAULT 0,
  input_media_id uuid REFERENCES media_files(id),
  output_media_id uuid NULL REFERENCES media_files(id),
  metadata jsonb DEFAULT '{}'::jsonb,
  cost_credits bigint DEFAULT 0,
  created_at timestamptz DEFAULT now(),
  started_at timestamptz NULL,
  finished_at timestamptz NULL
);

CREATE TABLE job_segments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  job_id uuid REFERENCES jobs(id) ON DELETE CASCADE,
  segment_index int NOT NULL,
  start_ms int,
  end_ms int,
  status text DEFAULT 'pending',
  result jsonb,
  created_at timestamptz DEFAULT now(),
  finished_at timestamptz
);

CREATE TYPE tx_status AS ENUM ('pending','succeeded','failed','cancelled');

CREATE TABLE transactions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  provider text,
  provider_payment_id text,
  amount_cents bigint,
  credits_bought bigint,
  status tx_status DEFAULT 'pending',
  webhook_payload jsonb,
  created_at timestamptz DEFAULT now(),
  updated_at timestamptz
);

CREATE TABLE credits_history (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid REFERENCES users(id) ON DELETE CASCADE,
  delta bigint,
  reason text,
  job_id uuid REFERENCES jobs(id),
  created_at timestamptz DEFAULT now()
);

CREATE INDEX jobs_user_id_status_idx ON jobs (user_id, status);
CREATE INDEX media_files_user_id_project_id_idx ON media_files (user_id, project_id);
CREATE INDEX transactions_user_id_provider_payment_id_idx ON transactions (user_id, provider_payment_id);

-- A payment is recorded once per provider id, however often its webhook is delivered;
-- a job has one row per segment index.
ALTER TABLE transactions
  ADD CONSTRAINT transactions_provider_payment_id_key UNIQUE (provider, provider_payment_id);
ALTER TABLE job_segments
  ADD CONSTRAINT job_segments_job_id_segment_index_key UNIQUE (job_id, segment_index);
