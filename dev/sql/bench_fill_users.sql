-- For `octavia-dev bench --suite`'s fairness figure: $1 users. Returns their ids.
INSERT INTO users (email, password_hash)
SELECT 'bench-' || gen_random_uuid() || '@example.com', 'not a hash'
FROM generate_series(1, $1::int)
RETURNING id
