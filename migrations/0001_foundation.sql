-- Foundation: users (provisioned on first authenticated request) and idempotency keys.
-- Timestamps are INTEGER seconds since the Unix epoch (UTC).

CREATE TABLE users (
  id         TEXT PRIMARY KEY,
  is_admin   INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
  is_active  INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX users_by_creation ON users (created_at, id);

-- One row per (user, Idempotency-Key). status_code/response_body are NULL while the first
-- request is still running; the row is reusable once expires_at has passed.
CREATE TABLE idempotency_keys (
  user_id       TEXT NOT NULL,
  key           TEXT NOT NULL,
  request_hash  TEXT NOT NULL,
  status_code   INTEGER,
  response_body TEXT,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  PRIMARY KEY (user_id, key)
) STRICT;

CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
