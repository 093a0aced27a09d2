-- Tells the API processes' event streams that the jobs in each element of $1 (job ids,
-- comma-separated, within NOTIFY's 8,000-byte payload) changed: what the worker sends
-- after its queue statements commit, in place of the per-row trigger of migration V6.
SELECT pg_notify('octavia_job_events', p) FROM unnest($1::text[]) AS p
