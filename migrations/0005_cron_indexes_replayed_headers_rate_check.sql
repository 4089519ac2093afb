-- Fixes of the review of issue 9 §3. Timestamps are INTEGER Unix seconds.

-- The cron's campaigns (store::campaigns::due renders domain::campaigns::DUE): scheduled ones
-- whose start has come, active ones whose end has come, active ones whose uses are all taken.
-- Each branch is answered from one of these indexes, so a run reads what it may move rather than
-- every campaign in flight. (The partial index's condition is the SQL of `Rule::UsedUp`, which
-- SQLite must find in a query to use the index.)
CREATE INDEX campaigns_by_start ON campaigns (status, starts_at);
CREATE INDEX campaigns_by_end ON campaigns (status, ends_at);
CREATE INDEX campaigns_used_up ON campaigns (status) WHERE max_uses IS NOT NULL AND uses >= max_uses;
