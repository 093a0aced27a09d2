-- Long-lived, revocable API keys for servers that call the API (POST /api/keys). Only the
-- SHA-256 of a key is kept, as for session tokens; `prefix` is the key's first characters,
-- shown in listings so an owner can tell keys apart. Deleting a key revokes it; deleting
-- its user deletes it.
CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name text NOT NULL,
  prefix text NOT NULL,
  key_hash bytea NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  last_used_at timestamptz
);

CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at);
