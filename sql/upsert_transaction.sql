-- Records a delivery about provider $1's payment $2, once per payment however often it is
-- delivered (transactions_provider_payment_id_key). A later delivery keeps the newest raw
-- payload and fills in what earlier ones lacked, but never changes what a succeeded
-- payment bought. Both branches leave the row locked by this transaction (a new row is
-- invisible to others until commit, a conflicting one is locked by DO UPDATE), so the
-- settle_transaction.sql that follows runs once per payment at a time.
INSERT INTO transactions (user_id, provider, provider_payment_id, amount_cents,
                          credits_bought, status, webhook_payload, updated_at)
VALUES ($3, $1, $2, $4, $5, 'pending', $6, now())
ON CONFLICT (provider, provider_payment_id) DO UPDATE
SET webhook_payload = EXCLUDED.webhook_payload,
    user_id = coalesce(transactions.user_id, EXCLUDED.user_id),
    amount_cents = coalesce(EXCLUDED.amount_cents, transactions.amount_cents),
    credits_bought = CASE WHEN transactions.status = 'succeeded'
                          THEN transactions.credits_bought
                          ELSE coalesce(EXCLUDED.credits_bought, transactions.credits_bought) END,
    updated_at = now()
RETURNING id, status::text
