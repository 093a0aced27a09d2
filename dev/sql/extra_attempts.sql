-- Segment attempts beyond the first, over all segments.
SELECT coalesce(sum(greatest(attempts - 1, 0)), 0)::bigint FROM job_segments
