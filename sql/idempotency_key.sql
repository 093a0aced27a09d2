-- What Idempotency-Key $2 of user $1 was used for, if it was.
SELECT request_hash, job_id FROM idempotency_keys WHERE user_id = $1 AND key = $2
