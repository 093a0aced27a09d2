-- Whether database $1 exists on this server (the demo creates `octavia` on its embedded
-- cluster the first time).
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)
