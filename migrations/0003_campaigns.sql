-- Promotional campaigns and their redemptions. Timestamps are INTEGER Unix seconds.

CREATE TABLE campaigns (
  code              TEXT PRIMARY KEY,
  name              TEXT NOT NULL,
  description       TEXT,
  offer_type        TEXT NOT NULL CHECK (offer_type IN ('discount_percent', 'discount_amount', 'credits', 'free_trial')),
  offer_value       INTEGER NOT NULL CHECK (offer_value > 0),
  landing_url       TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'active', 'completed')),
  starts_at         INTEGER,
  ends_at           INTEGER,
  max_uses          INTEGER CHECK (max_uses IS NULL OR max_uses > 0),
  max_uses_per_user INTEGER NOT NULL DEFAULT 1 CHECK (max_uses_per_user > 0),
  -- Redemptions so far; the CHECK is the last line of defence for max_uses.
  uses              INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)),
  tags              TEXT NOT NULL DEFAULT '[]',
  created_by        TEXT NOT NULL,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  CHECK (starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at)
) STRICT;

CREATE INDEX campaigns_by_status ON campaigns (status, created_at, code);
CREATE INDEX campaigns_by_creation ON campaigns (created_at, code);

-- One row per redemption; `seq` numbers a user's redemptions of a campaign, so a user can never
-- hold two redemptions with the same number.
CREATE TABLE redemptions (
  id            TEXT PRIMARY KEY,
  campaign_code TEXT NOT NULL REFERENCES campaigns (code),
  user_id       TEXT NOT NULL,
  seq           INTEGER NOT NULL CHECK (seq >= 1),
  offer_type    TEXT NOT NULL,
  offer_value   INTEGER NOT NULL,
  created_at    INTEGER NOT NULL,
  UNIQUE (campaign_code, user_id, seq)
) STRICT;

CREATE INDEX redemptions_by_user ON redemptions (user_id, created_at, id);
CREATE INDEX redemptions_by_campaign ON redemptions (campaign_code, created_at);
