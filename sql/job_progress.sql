-- What a job's live event stream reports, re-read on each of its notifications.
SELECT status::text, progress, segments_done, segments_total, last_error
FROM jobs WHERE id = $1
