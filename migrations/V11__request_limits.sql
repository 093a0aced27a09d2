-- Request limits of the HTTP API (docs/api.md#limits): failed sign-ins per account and
-- per client address, and job creations per user. Kept here rather than in each API
-- process's memory so that a limit holds however many API processes share the database.
--
-- One row per (kind, key): a fixed window that opens with the first request counted and
-- lasts until window_end; a request after that opens a new one. `hits` is what the window
-- has counted so far. Keys are the client's address as text, the user's id as text, and
-- for accounts the SHA-256 (hex) of the normalised email rather than the email itself:
-- whatever people type as an email, known or not, is not kept readable here.
CREATE TABLE request_limits (
  kind text NOT NULL CHECK (kind IN ('sign_in_account', 'sign_in_ip', 'job_create')),
  key text NOT NULL,
  window_end timestamptz NOT NULL,
  hits int NOT NULL,
  PRIMARY KEY (kind, key)
);

-- Rows whose window ended are deleted a few at a time (sql/prune_request_limits.sql);
-- this finds them without reading the table.
CREATE INDEX request_limits_window_end_idx ON request_limits (window_end);
