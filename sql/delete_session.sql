-- Ends session $1 (sign-out): its token stops working at once.
DELETE FROM sessions WHERE id = $1
