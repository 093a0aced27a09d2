-- A sign-in to account $1 (the SHA-256 of its normalised email) from address $2 (NULL
-- when unknown) succeeded: the account's failures are forgiven, and the address's counter
-- takes back the attempt sql/count_requests.sql counted, since it limits failures only.
WITH account AS (
    DELETE FROM request_limits WHERE kind = 'sign_in_account' AND key = $1::text
)
UPDATE request_limits SET hits = hits - 1
WHERE kind = 'sign_in_ip' AND key = $2::text AND hits > 0 AND window_end > now()
