-- Marketplace, second part (issue 12): orders with their price and fee snapshotted, the license
-- and download grant a completed order creates, and the license's activations.

-- A buyer has at most one live (pending or completed) order per item; a refunded order frees the
-- place. `fee_cents + seller_cents = price_cents` (domain::marketplace::sale).
CREATE TABLE marketplace_orders (
  id                  TEXT PRIMARY KEY,
  item_id             TEXT NOT NULL,
  buyer_id            TEXT NOT NULL,
  seller_id           TEXT NOT NULL,
  price_cents         INTEGER NOT NULL CHECK (price_cents >= 0),
  fee_bps             INTEGER NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
  fee_cents           INTEGER NOT NULL CHECK (fee_cents >= 0),
  seller_cents        INTEGER NOT NULL CHECK (seller_cents >= 0),
  currency            TEXT NOT NULL,
  status              TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'refunded')),
  checkout_session_id TEXT UNIQUE,
  checkout_url        TEXT,
  payment_ref         TEXT,
  created_at          INTEGER NOT NULL,
  completed_at        INTEGER,
  refunded_at         INTEGER,
  updated_at          INTEGER NOT NULL,
  CHECK (fee_cents + seller_cents = price_cents),
  CHECK ((status = 'pending') = (completed_at IS NULL))
);
CREATE UNIQUE INDEX marketplace_one_live_order ON marketplace_orders (item_id, buyer_id) WHERE status IN ('pending', 'completed');
CREATE INDEX marketplace_orders_by_buyer ON marketplace_orders (buyer_id, created_at, id);
CREATE INDEX marketplace_orders_by_seller ON marketplace_orders (seller_id, status, completed_at);

-- One license per completed order. Lookups go by `key_hash` (SHA-256 of the canonical key); the
-- key itself is kept for its buyer to read again (the order page shows it, as Gumroad's receipt
-- does), and replaced when the buyer rotates it. `activation_limit` is the item's at completion.
CREATE TABLE marketplace_licenses (
  id               TEXT PRIMARY KEY,
  order_id         TEXT NOT NULL UNIQUE,
  item_id          TEXT NOT NULL,
  buyer_id         TEXT NOT NULL,
  license_key      TEXT NOT NULL,
  key_hash         TEXT NOT NULL UNIQUE,
  status           TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'revoked')),
  activation_limit INTEGER CHECK (activation_limit IS NULL OR activation_limit > 0),
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX marketplace_licenses_by_item ON marketplace_licenses (item_id, created_at, id);

-- Instances a license is activated on; an instance name is active at most once per license.
CREATE TABLE marketplace_activations (
  id             TEXT PRIMARY KEY,
  license_id     TEXT NOT NULL,
  instance_name  TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  deactivated_at INTEGER
);
CREATE UNIQUE INDEX marketplace_one_active_instance ON marketplace_activations (license_id, instance_name) WHERE deactivated_at IS NULL;

-- The download grant of a completed order: valid until `expires_at` unless revoked (a refund).
CREATE TABLE marketplace_downloads (
  id         TEXT PRIMARY KEY,
  order_id   TEXT NOT NULL UNIQUE,
  item_id    TEXT NOT NULL,
  buyer_id   TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  downloads  INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
