-- For `octavia-dev bench --suite`'s fairness figure: how many users had segments completed.
SELECT count(DISTINCT owner_id) FROM job_segments WHERE status = 'completed'
