-- Segments that ran more than once, with their attempts (for the chaos report).
SELECT id, attempts FROM job_segments WHERE attempts > 1
