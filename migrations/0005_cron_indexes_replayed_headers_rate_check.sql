-- Fixes of the review of issue 9 §3. Timestamps are INTEGER Unix seconds.

-- The cron's campaigns (store::campaigns::due renders domain::campaigns::DUE): scheduled ones
-- whose start has come, active ones whose end has come, active ones whose uses are all taken.
-- Each branch is answered from one of these indexes, so a run reads what it may move rather than
-- every campaign in flight. (The partial index's condition is the SQL of `Rule::UsedUp`, which
-- SQLite must find in a query to use the index.)
CREATE INDEX campaigns_by_start ON campaigns (status, starts_at);
CREATE INDEX campaigns_by_end ON campaigns (status, ends_at);
CREATE INDEX campaigns_used_up ON campaigns (status) WHERE max_uses IS NOT NULL AND uses >= max_uses;

-- earnings.rate_bps (a commission's rate) gets the CHECK affiliates.commission_rate_bps has.
-- SQLite cannot add a CHECK to a table, so the table is rebuilt: the same columns, constraints
-- and indexes as in 0002 plus the new CHECK, the rows copied as they are (a migration that meets
-- an out-of-range rate fails whole and changes nothing). No table references earnings, and it
-- has no triggers or views.
CREATE TABLE earnings_new (
  id            TEXT PRIMARY KEY,
  program       TEXT NOT NULL CHECK (program IN ('affiliate', 'creator', 'marketplace')),
  payee_id      TEXT NOT NULL,
  kind          TEXT NOT NULL CHECK (kind IN ('commission', 'adjustment')),
  amount_cents  INTEGER NOT NULL,
  conversion_id TEXT,
  refund_seq    INTEGER,
  rate_bps      INTEGER CHECK (rate_bps IS NULL OR rate_bps BETWEEN 0 AND 10000),
  status        TEXT NOT NULL CHECK (status IN ('open', 'in_payout', 'paid', 'reversed')),
  available_at  INTEGER NOT NULL,
  payout_id     TEXT REFERENCES payouts (id),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  CHECK ((kind = 'commission' AND amount_cents >= 0) OR (kind = 'adjustment' AND amount_cents < 0)),
  CHECK ((status IN ('in_payout', 'paid')) = (payout_id IS NOT NULL)),
  CHECK (kind = 'commission' OR status <> 'reversed')
) STRICT;

INSERT INTO earnings_new (id, program, payee_id, kind, amount_cents, conversion_id, refund_seq, rate_bps, status,
                          available_at, payout_id, created_at, updated_at)
  SELECT id, program, payee_id, kind, amount_cents, conversion_id, refund_seq, rate_bps, status,
         available_at, payout_id, created_at, updated_at
  FROM earnings;

DROP TABLE earnings;
ALTER TABLE earnings_new RENAME TO earnings;

CREATE UNIQUE INDEX earnings_one_commission_per_conversion ON earnings (program, conversion_id) WHERE kind = 'commission';
CREATE UNIQUE INDEX earnings_one_adjustment_per_refund ON earnings (program, conversion_id, refund_seq) WHERE kind = 'adjustment';
CREATE INDEX earnings_by_payee ON earnings (program, payee_id, status, available_at);
CREATE INDEX earnings_by_payee_creation ON earnings (program, payee_id, created_at, id);
CREATE INDEX earnings_by_payout ON earnings (payout_id);

-- The headers a handler set on a response stored for Idempotency-Key replays (`Location` of a
-- 201), as JSON [[name, value], …]; NULL for keys stored before.
ALTER TABLE idempotency_keys ADD COLUMN response_headers TEXT;
