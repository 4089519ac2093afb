-- Gamification: activity events (each id counted once), per-user totals, badges, and the outbox
-- of leaderboard updates. Leaderboards themselves live in the Leaderboard Durable Objects.
-- Timestamps are INTEGER Unix seconds.

-- Every counted event, kept while a re-send of it could still be accepted (ACTIVITY_MAX_AGE_DAYS).
CREATE TABLE activity_events (
  id          TEXT PRIMARY KEY,
  batch_id    TEXT NOT NULL,
  user_id     TEXT NOT NULL,
  metric      TEXT NOT NULL CHECK (metric IN ('api_calls', 'matches', 'content_items', 'revenue_cents', 'referrals')),
  amount      INTEGER NOT NULL CHECK (amount > 0),
  occurred_at INTEGER NOT NULL,
  received_at INTEGER NOT NULL
) STRICT;

CREATE INDEX activity_events_by_batch ON activity_events (batch_id);
CREATE INDEX activity_events_by_time ON activity_events (occurred_at);

-- One row per write that counted events: `pending` until every leaderboard has confirmed it. The
-- cron re-sends pending batches, least tried first (the leaderboards ignore a batch seen before),
-- and after a week gives up on one (`abandoned`, logged as an error).
CREATE TABLE activity_batches (
  id         TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL,
  state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'published', 'abandoned')),
  attempts   INTEGER NOT NULL DEFAULT 0,
  settled_at INTEGER
) STRICT;

CREATE INDEX activity_batches_pending ON activity_batches (attempts, created_at) WHERE state = 'pending';
CREATE INDEX activity_batches_by_time ON activity_batches (created_at);

-- All-time totals per user and metric: what badges are judged by.
CREATE TABLE user_metrics (
  user_id    TEXT NOT NULL,
  metric     TEXT NOT NULL,
  value      INTEGER NOT NULL CHECK (value >= 0),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, metric)
) STRICT, WITHOUT ROWID;

-- A badge is held at most once: the primary key makes a second award a no-op.
CREATE TABLE user_badges (
  user_id    TEXT NOT NULL,
  badge_id   TEXT NOT NULL,
  awarded_at INTEGER NOT NULL,
  source     TEXT NOT NULL CHECK (source IN ('auto', 'manual')),
  awarded_by TEXT,
  PRIMARY KEY (user_id, badge_id)
) STRICT, WITHOUT ROWID;
