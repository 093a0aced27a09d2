-- For `octavia-dev bench`: the database clock, to time a run by the jobs' own finish times.
SELECT now()
