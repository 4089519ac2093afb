-- Affiliates and referrals: codes, first-touch attributions, conversions and refunds, the
-- earnings ledger with payouts, and the API-credit ledger. Timestamps are INTEGER Unix seconds.
-- Guarantees that must hold under concurrency are constraints here (see README "Ledgers").

CREATE TABLE affiliates (
  id                  TEXT PRIMARY KEY,
  user_id             TEXT NOT NULL UNIQUE,
  code                TEXT NOT NULL UNIQUE,
  status              TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'terminated')),
  commission_rate_bps INTEGER NOT NULL CHECK (commission_rate_bps BETWEEN 0 AND 10000),
  commission_months   INTEGER NOT NULL CHECK (commission_months BETWEEN 1 AND 120),
  website             TEXT,
  payout_email        TEXT,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL
) STRICT;

CREATE INDEX affiliates_by_creation ON affiliates (created_at, id);
CREATE INDEX affiliates_by_status ON affiliates (status, created_at, id);

CREATE TABLE referral_codes (
  user_id    TEXT PRIMARY KEY,
  code       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
) STRICT;

-- First touch wins: one row per signed-up user, never rewritten.
CREATE TABLE attributions (
  user_id       TEXT PRIMARY KEY,
  affiliate_id  TEXT REFERENCES affiliates (id),
  referral_code TEXT,
  created_at    INTEGER NOT NULL,
  CHECK (affiliate_id IS NOT NULL OR referral_code IS NOT NULL)
) STRICT;

CREATE INDEX attributions_by_affiliate ON attributions (affiliate_id, created_at);

CREATE TABLE referrals (
  id            TEXT PRIMARY KEY,
  referrer_id   TEXT NOT NULL,
  referred_id   TEXT NOT NULL UNIQUE,
  code          TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('pending', 'converted', 'expired')),
  expires_at    INTEGER NOT NULL,
  converted_at  INTEGER,
  conversion_id TEXT,
  created_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX referrals_by_referrer ON referrals (referrer_id, status);
CREATE INDEX referrals_by_expiry ON referrals (status, expires_at);

-- Paid invoices (Stripe) or conversions reported by other billing systems (admin).
CREATE TABLE conversions (
  id           TEXT PRIMARY KEY,
  external_id  TEXT NOT NULL UNIQUE,
  source       TEXT NOT NULL CHECK (source IN ('stripe', 'admin')),
  user_id      TEXT NOT NULL,
  amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
  currency     TEXT NOT NULL,
  occurred_at  INTEGER NOT NULL,
  created_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX conversions_by_user ON conversions (user_id, occurred_at);

-- Refunds of a conversion, numbered per conversion: two refunds computed from the same state
-- cannot both land (the second violates the primary key and its whole batch rolls back).
CREATE TABLE refunds (
  conversion_id  TEXT NOT NULL REFERENCES conversions (id),
  seq            INTEGER NOT NULL CHECK (seq >= 1),
  amount_cents   INTEGER NOT NULL CHECK (amount_cents > 0),
  refunded_total INTEGER NOT NULL CHECK (refunded_total > 0),
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (conversion_id, seq)
) STRICT;

-- Payouts of every earning program (affiliates now; creators and sellers later).
CREATE TABLE payouts (
  id             TEXT PRIMARY KEY,
  program        TEXT NOT NULL CHECK (program IN ('affiliate', 'creator', 'marketplace')),
  payee_id       TEXT NOT NULL,
  user_id        TEXT NOT NULL,
  amount_cents   INTEGER NOT NULL CHECK (amount_cents > 0),
  status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'processing', 'paid', 'failed')),
  failure_reason TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
) STRICT;

CREATE INDEX payouts_by_payee ON payouts (program, payee_id, created_at, id);
CREATE INDEX payouts_by_status ON payouts (status, created_at, id);
CREATE INDEX payouts_by_creation ON payouts (created_at, id);

-- The earnings ledger: a commission (>= 0) per conversion, adjustments (< 0) per refund.
-- A row is in a payout exactly when it is in_payout or paid.
CREATE TABLE earnings (
  id            TEXT PRIMARY KEY,
  program       TEXT NOT NULL CHECK (program IN ('affiliate', 'creator', 'marketplace')),
  payee_id      TEXT NOT NULL,
  kind          TEXT NOT NULL CHECK (kind IN ('commission', 'adjustment')),
  amount_cents  INTEGER NOT NULL,
  conversion_id TEXT,
  refund_seq    INTEGER,
  rate_bps      INTEGER,
  status        TEXT NOT NULL CHECK (status IN ('open', 'in_payout', 'paid', 'reversed')),
  available_at  INTEGER NOT NULL,
  payout_id     TEXT REFERENCES payouts (id),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  CHECK ((kind = 'commission' AND amount_cents >= 0) OR (kind = 'adjustment' AND amount_cents < 0)),
  CHECK ((status IN ('in_payout', 'paid')) = (payout_id IS NOT NULL)),
  CHECK (kind = 'commission' OR status <> 'reversed')
) STRICT;

CREATE UNIQUE INDEX earnings_one_commission_per_conversion ON earnings (program, conversion_id) WHERE kind = 'commission';
CREATE UNIQUE INDEX earnings_one_adjustment_per_refund ON earnings (program, conversion_id, refund_seq) WHERE kind = 'adjustment';
CREATE INDEX earnings_by_payee ON earnings (program, payee_id, status, available_at);
CREATE INDEX earnings_by_payee_creation ON earnings (program, payee_id, created_at, id);
CREATE INDEX earnings_by_payout ON earnings (payout_id);

-- The API-credit ledger, append-only. Each row carries the running balance; the next row is
-- computed from the latest inside one INSERT … SELECT, and the CHECK refuses any overdraft.
CREATE TABLE credit_transactions (
  user_id       TEXT NOT NULL,
  seq           INTEGER NOT NULL CHECK (seq >= 1),
  kind          TEXT NOT NULL CHECK (kind IN ('bonus', 'deduction', 'adjustment')),
  amount        INTEGER NOT NULL CHECK (amount <> 0),
  balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
  reason        TEXT,
  source        TEXT UNIQUE,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (user_id, seq),
  CHECK ((kind = 'bonus' AND amount > 0) OR (kind = 'deduction' AND amount < 0) OR kind = 'adjustment')
) STRICT;

-- Stripe plumbing: delivered event ids (each has its effect once) and customer → user links.
CREATE TABLE stripe_events (
  id          TEXT PRIMARY KEY,
  type        TEXT NOT NULL,
  received_at INTEGER NOT NULL
) STRICT;

CREATE TABLE stripe_customers (
  customer_id TEXT PRIMARY KEY,
  user_id     TEXT NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;

-- Which invoice a payment intent paid (invoice.paid on older API versions, invoice_payment.paid
-- on newer ones, where charges no longer name their invoice).
CREATE TABLE stripe_payments (
  payment_intent TEXT PRIMARY KEY,
  invoice_id     TEXT NOT NULL,
  updated_at     INTEGER NOT NULL
) STRICT;

-- Refund totals that arrived before their conversion (Stripe does not order events), keyed by
-- invoice id or, when the charge named none, payment intent; applied once the conversion is known.
CREATE TABLE stripe_refunds (
  reference       TEXT PRIMARY KEY,
  amount_refunded INTEGER NOT NULL CHECK (amount_refunded >= 0),
  updated_at      INTEGER NOT NULL
) STRICT;
