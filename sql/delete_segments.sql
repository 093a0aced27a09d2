-- Every segment of job $1, when a retry plans it again (its intermediate objects were
-- swept, so the segments' inputs and results name objects that are gone).
DELETE FROM job_segments WHERE job_id = $1
