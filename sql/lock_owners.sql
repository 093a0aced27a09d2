-- Takes the transaction-level advisory lock of each user of $1, in the order given (the
-- caller sorts them, so two claims never wait for each other in a cycle). A claim that
-- leased segments of users with a ceiling holds these until it commits, so the claims of
-- one such user check their ceiling one after the other (see queue::claim).
SELECT pg_advisory_xact_lock(1868787316, hashtext(o.owner_id::text))
FROM (SELECT u.owner_id FROM unnest($1::uuid[]) WITH ORDINALITY AS u(owner_id, ord)
      ORDER BY u.ord) o
