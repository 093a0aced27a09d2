-- The balance of user $1.
SELECT credits FROM users WHERE id = $1
