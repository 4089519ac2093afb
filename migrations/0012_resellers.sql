-- White-label resellers (issue 13): applications and contracts, their history, end users, and
-- monthly usage totals for reports (the count itself lives in each reseller's ResellerQuota
-- Durable Object, src/objects/reseller_quota.rs, which writes these totals).

-- One reseller account per user. `version` counts changes: every write lands only at the
-- version it read, so no transition or amendment undoes another unseen. The contract in force is
-- `contract` (JSON of domain::resellers::Contract) with its dates and quotas copied into columns
-- for the cron's index and the quota checks. `custom_domain` is normalized; `domain_verified_at`
-- is set by an admin and cleared when the domain changes or the reseller is terminated.
CREATE TABLE resellers (
  id                         TEXT PRIMARY KEY,
  user_id                    TEXT NOT NULL UNIQUE,
  company_name               TEXT NOT NULL,
  contact_email              TEXT NOT NULL,
  requested_domain           TEXT,
  expected_monthly_api_calls INTEGER NOT NULL CHECK (expected_monthly_api_calls >= 0),
  status                     TEXT NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'approved', 'active', 'expired', 'suspended', 'terminated')),
  version                    INTEGER NOT NULL DEFAULT 1,
  -- The id of the write that made this version: a writer reads its own write back by it.
  write_id                   TEXT,
  contract                   TEXT,
  starts_at                  INTEGER,
  ends_at                    INTEGER,
  max_end_users              INTEGER,
  max_api_calls_per_month    INTEGER,
  branding                   TEXT,
  custom_domain              TEXT,
  domain_verified_at         INTEGER,
  -- When the cron last copied this reseller's usage totals (it goes oldest first).
  usage_synced_at            INTEGER,
  created_at                 INTEGER NOT NULL,
  updated_at                 INTEGER NOT NULL,
  CHECK (contract IS NOT NULL OR status IN ('pending', 'suspended', 'terminated'))
);
-- A domain is one reseller's once verified (anyone may ask for it before: no squatting).
CREATE UNIQUE INDEX resellers_verified_domain ON resellers (custom_domain) WHERE domain_verified_at IS NOT NULL;
CREATE INDEX resellers_by_domain ON resellers (custom_domain);
CREATE INDEX resellers_by_sync ON resellers (usage_synced_at);
CREATE INDEX resellers_by_status ON resellers (status, created_at, id);
-- The cron: approved contracts that have started, approved or active ones that have ended.
CREATE INDEX resellers_starting ON resellers (starts_at) WHERE status = 'approved';
CREATE INDEX resellers_ending ON resellers (ends_at) WHERE status IN ('approved', 'active');

-- Every change of a reseller (status, contract, domain, quota reset): who, when, what.
CREATE TABLE reseller_events (
  id          TEXT PRIMARY KEY,
  reseller_id TEXT NOT NULL,
  kind        TEXT NOT NULL,
  detail      TEXT NOT NULL DEFAULT '{}',
  actor_id    TEXT,
  created_at  INTEGER NOT NULL
);
CREATE INDEX reseller_events_by_reseller ON reseller_events (reseller_id, created_at, id);

-- A reseller's end users; an active external id is unique per reseller. Seats are the active
-- ones, at most the contract's max_end_users (checked in the INSERT that takes one).
CREATE TABLE reseller_end_users (
  id             TEXT PRIMARY KEY,
  reseller_id    TEXT NOT NULL,
  external_id    TEXT NOT NULL,
  email          TEXT,
  created_at     INTEGER NOT NULL,
  deactivated_at INTEGER
);
CREATE UNIQUE INDEX reseller_one_active_end_user ON reseller_end_users (reseller_id, external_id) WHERE deactivated_at IS NULL;
CREATE INDEX reseller_end_users_by_reseller ON reseller_end_users (reseller_id, created_at, id);

-- Monthly totals of accepted API calls, written by the reseller's quota object (absolute totals,
-- only ever raised: a repeated or late write changes nothing).
CREATE TABLE reseller_usage (
  reseller_id TEXT NOT NULL,
  month       TEXT NOT NULL,
  calls       INTEGER NOT NULL CHECK (calls >= 0),
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (reseller_id, month)
) WITHOUT ROWID;
