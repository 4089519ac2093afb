-- Referral bonuses as records of their own (issue 10): a converted referral's bonus is held like
-- a commission (COMMISSION_HOLD_DAYS) before its credits reach the ledger, and cancelled when its
-- qualifying payment is refunded while it is held. Timestamps are INTEGER Unix seconds.

-- One bonus per referral, written in the batch that converts the referral. pending → granted
-- (the cron, or the conversion's batch without a hold, appends the credit transaction
-- (referrer_id, credit_seq), source 'referral:<referral_id>', in the same batch) | cancelled (a
-- refund's batch). Every transition is guarded by status = 'pending'.
CREATE TABLE referral_bonuses (
  referral_id   TEXT PRIMARY KEY REFERENCES referrals (id),
  referrer_id   TEXT NOT NULL,
  conversion_id TEXT NOT NULL UNIQUE REFERENCES conversions (id),
  credits       INTEGER NOT NULL CHECK (credits >= 0),
  status        TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'cancelled')),
  available_at  INTEGER NOT NULL,
  credit_seq    INTEGER,
  granted_at    INTEGER,
  cancelled_at  INTEGER,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  -- A grant of credits writes its ledger row in the same batch, or the batch fails.
  CHECK ((status = 'granted' AND credits > 0) = (credit_seq IS NOT NULL)),
  CHECK ((status = 'granted') = (granted_at IS NOT NULL)),
  CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
) STRICT;

CREATE INDEX referral_bonuses_due ON referral_bonuses (status, available_at);
CREATE INDEX referral_bonuses_by_referrer ON referral_bonuses (referrer_id, status);

-- Bonuses credited before this migration: granted, with the credit transaction they produced
-- (or none, when REFERRAL_BONUS_CREDITS was 0).
INSERT INTO referral_bonuses (referral_id, referrer_id, conversion_id, credits, status, available_at, credit_seq,
                              granted_at, created_at, updated_at)
SELECT r.id, r.referrer_id, r.conversion_id, COALESCE(t.amount, 0), 'granted', r.converted_at, t.seq,
       r.converted_at, r.converted_at, r.converted_at
FROM referrals r
LEFT JOIN credit_transactions t ON t.source = 'referral:' || r.id
WHERE r.status = 'converted' AND r.conversion_id IS NOT NULL AND r.converted_at IS NOT NULL;
