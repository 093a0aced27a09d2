-- Claims Idempotency-Key $2 of user $1 for job $4, whose request hashes to $3. A key used
-- before fails with a unique violation (idempotency_keys_pkey): the caller then returns
-- the key's job instead of creating another.
INSERT INTO idempotency_keys (user_id, key, request_hash, job_id)
VALUES ($1, $2, $3, $4)
