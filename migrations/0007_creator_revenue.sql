-- Creator revenue sharing: reported revenue records, each split when it arrives (the platform's
-- part and the creators' lines), pools allocated into records, creators' terms, channels'
-- owners, and closed periods. Timestamps are INTEGER Unix seconds; months are TEXT 'YYYY-MM'.

-- Bumped by every change the split of an arriving record depends on (terms, owners, a period
-- closing). A write of records reads it with what it depends on and lands only if it is
-- unchanged (store::revenue): records are never split by terms, owners or periods that changed
-- in between.
CREATE TABLE revenue_state (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
) STRICT;
INSERT INTO revenue_state (id, version) VALUES (1, 0);

-- A creator's share from a month on; the terms in force for a month are the latest started.
CREATE TABLE creator_terms (
  creator_id     TEXT NOT NULL,
  effective_from TEXT NOT NULL CHECK (effective_from GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'),
  share_bps      INTEGER NOT NULL CHECK (share_bps BETWEEN 0 AND 10000),
  set_by         TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (creator_id, effective_from)
) STRICT, WITHOUT ROWID;

-- A channel's owners (collaborators); their shares sum to 10000. No rows: the reporting creator
-- keeps the whole creator part.
CREATE TABLE channel_owners (
  channel_id TEXT NOT NULL,
  creator_id TEXT NOT NULL,
  share_bps  INTEGER NOT NULL CHECK (share_bps BETWEEN 1 AND 10000),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (channel_id, creator_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE revenue_pools (
  id          TEXT PRIMARY KEY,
  batch_id    TEXT NOT NULL,
  period      TEXT NOT NULL,
  gross_cents INTEGER NOT NULL CHECK (gross_cents > 0),
  basis       TEXT NOT NULL CHECK (basis IN ('matches', 'views', 'api_calls')),
  created_at  INTEGER NOT NULL
) STRICT;

-- One row per record id, never rewritten. `statement_period` is the statement it lands in: its
-- usage month while that is open, else the month after the last closed one (an adjustment).
-- `seq` (the rowid, kept by VACUUM as an INTEGER PRIMARY KEY) orders records as D1 stored them.
CREATE TABLE revenue_records (
  seq              INTEGER PRIMARY KEY,
  id               TEXT NOT NULL UNIQUE,
  batch_id         TEXT NOT NULL,
  creator_id       TEXT NOT NULL,
  channel_id       TEXT NOT NULL,
  video_id         TEXT,
  period           TEXT NOT NULL CHECK (period GLOB '[0-9][0-9][0-9][0-9]-[01][0-9]'),
  statement_period TEXT NOT NULL CHECK (statement_period >= period),
  gross_cents      INTEGER NOT NULL,
  currency         TEXT NOT NULL,
  views            INTEGER NOT NULL CHECK (views >= 0),
  api_calls        INTEGER NOT NULL CHECK (api_calls >= 0),
  matches          INTEGER NOT NULL CHECK (matches >= 0),
  share_bps        INTEGER NOT NULL CHECK (share_bps BETWEEN 0 AND 10000),
  platform_cents   INTEGER NOT NULL,
  creator_cents    INTEGER NOT NULL,
  pool_id          TEXT REFERENCES revenue_pools (id),
  received_at      INTEGER NOT NULL,
  CHECK (platform_cents + creator_cents = gross_cents)
) STRICT;

CREATE INDEX revenue_records_by_batch ON revenue_records (batch_id);
CREATE INDEX revenue_records_by_usage ON revenue_records (period, creator_id, channel_id, video_id);
CREATE INDEX revenue_records_by_creator ON revenue_records (creator_id, period);
CREATE INDEX revenue_records_by_statement ON revenue_records (statement_period);

-- Each creator's part of a record (one line, or one per owner of the channel). The lines of a
-- record sum to its creator_cents (ledger audit).
CREATE TABLE revenue_lines (
  record_id        TEXT NOT NULL REFERENCES revenue_records (id),
  creator_id       TEXT NOT NULL,
  share_bps        INTEGER NOT NULL CHECK (share_bps BETWEEN 1 AND 10000),
  cents            INTEGER NOT NULL,
  statement_period TEXT NOT NULL,
  received_at      INTEGER NOT NULL,
  PRIMARY KEY (record_id, creator_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX revenue_lines_by_creator ON revenue_lines (creator_id, received_at, record_id);
CREATE INDEX revenue_lines_by_statement ON revenue_lines (statement_period, creator_id);

-- Closed periods: a statement once closed is never rewritten. `batch_id` names the closing
-- request, whose other statements (earnings, activity) apply only with this row.
-- `records_seq` and `payouts_seq` are the last records' and payouts' `seq` when it closed: what
-- came before and after a close, in the order D1 applied it (seconds cannot tell).
CREATE TABLE revenue_periods (
  period      TEXT PRIMARY KEY,
  batch_id    TEXT NOT NULL UNIQUE,
  closed_at   INTEGER NOT NULL,
  closed_by   TEXT NOT NULL,
  records_seq INTEGER NOT NULL,
  payouts_seq INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Payouts get an explicit order: `seq`, one more than the largest so far (store::earnings::
-- gather_payout); existing payouts are numbered in the order they were inserted.
ALTER TABLE payouts ADD COLUMN seq INTEGER;
UPDATE payouts SET seq = rowid;
CREATE UNIQUE INDEX payouts_by_seq ON payouts (seq);

-- A creator's part of a closed statement becomes one earnings row, named by its source
-- ('statement:YYYY-MM'): at most one per payee and statement.
ALTER TABLE earnings ADD COLUMN source TEXT;
CREATE UNIQUE INDEX earnings_one_per_source ON earnings (program, payee_id, source) WHERE source IS NOT NULL;
