-- Counts one request against each (kind $1[i], key $2[i]) in fixed windows of $3 seconds:
-- a row's window opens with its first request and a request after window_end opens the
-- next one. Returns each counter's hits in its window, this request included, and the
-- seconds until its window ends, which the caller compares with its limits. Rows are
-- locked in the order given, so two requests counting the same keys cannot deadlock.
INSERT INTO request_limits AS r (kind, key, window_end, hits)
SELECT kind, key, now() + make_interval(secs => $3::float8), 1
FROM unnest($1::text[], $2::text[]) AS c(kind, key)
ON CONFLICT (kind, key) DO UPDATE SET
    hits = CASE WHEN r.window_end <= now() THEN 1 ELSE r.hits + 1 END,
    window_end = CASE WHEN r.window_end <= now() THEN excluded.window_end ELSE r.window_end END
RETURNING kind, hits, greatest(extract(epoch FROM r.window_end - now()), 0)::float8 AS seconds_left
