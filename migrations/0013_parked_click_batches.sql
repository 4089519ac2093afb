-- Click batches a LinkClicks Durable Object did not confirm after every attempt (issue 14's
-- fault tests): parked here by the request that sent them and sent again by the cron until the
-- object confirms. The object remembers batch ids for a day, so a batch it had applied after all
-- counts once; a batch still parked after `links::PARK_HOURS` is dropped and logged as lost.
CREATE TABLE parked_click_batches (
  id         TEXT PRIMARY KEY,
  link       TEXT NOT NULL,
  body       TEXT NOT NULL,
  clicks     INTEGER NOT NULL,
  parked_at  INTEGER NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX parked_click_batches_by_time ON parked_click_batches (parked_at);
