-- Ledger audit: returns one row per violation, and no rows when the ledgers are consistent.
-- Run it against D1:  npx wrangler d1 execute DB --remote --file sql/ledger_audit.sql
-- (locally: --local [--persist-to DIR]). The e2e suite runs it after its concurrency tests.
-- D1 allows 5 terms per compound SELECT, hence the nesting.
WITH
credit_steps AS (
  SELECT user_id, seq, amount, balance_after,
         LAG(balance_after, 1, 0) OVER (PARTITION BY user_id ORDER BY seq) AS balance_before,
         ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY seq) AS position
  FROM credit_transactions
),
refund_steps AS (
  SELECT conversion_id, seq, amount_cents, refunded_total,
         LAG(refunded_total, 1, 0) OVER (PARTITION BY conversion_id ORDER BY seq) AS total_before,
         ROW_NUMBER() OVER (PARTITION BY conversion_id ORDER BY seq) AS position
  FROM refunds
)
SELECT * FROM (
-- Credits: each row continues the previous balance; sequence numbers have no gaps; no balance is negative.
SELECT 'credit_balance_chain' AS check_name, user_id || '#' || seq AS subject,
       'balance_after ' || balance_after || ' <> ' || balance_before || ' + ' || amount AS detail
FROM credit_steps WHERE balance_after <> balance_before + amount
UNION ALL
SELECT 'credit_sequence_gap', user_id || '#' || seq, 'row ' || position || ' has seq ' || seq
FROM credit_steps WHERE seq <> position
UNION ALL
SELECT 'credit_negative_balance', user_id || '#' || seq, 'balance_after ' || balance_after
FROM credit_transactions WHERE balance_after < 0
UNION ALL
-- Credits: the latest balance equals the sum of all entries.
SELECT 'credit_balance_sum', t.user_id, 'latest ' || last.balance_after || ' <> sum ' || t.total
FROM (SELECT user_id, SUM(amount) AS total, MAX(seq) AS last_seq FROM credit_transactions GROUP BY user_id) t
JOIN credit_transactions last ON last.user_id = t.user_id AND last.seq = t.last_seq
WHERE last.balance_after <> t.total
)
UNION ALL
SELECT * FROM (
-- Payouts: the amount equals the sum of the earnings it carries, and is positive.
SELECT 'payout_amount', p.id, 'amount ' || p.amount_cents || ' <> earnings ' || COALESCE(SUM(e.amount_cents), 0)
FROM payouts p LEFT JOIN earnings e ON e.payout_id = p.id
WHERE p.status <> 'failed'
GROUP BY p.id HAVING p.amount_cents <> COALESCE(SUM(e.amount_cents), 0) OR p.amount_cents <= 0
UNION ALL
-- Earnings follow their payout: in_payout while it is under way, paid when it is paid, none on a failed one.
SELECT 'earning_payout_status', e.id, 'earning ' || e.status || ' in payout ' || COALESCE(p.status, 'missing')
FROM earnings e LEFT JOIN payouts p ON p.id = e.payout_id
WHERE (e.status = 'in_payout' AND COALESCE(p.status, '') NOT IN ('pending', 'approved', 'processing'))
   OR (e.status = 'paid' AND COALESCE(p.status, '') <> 'paid')
   OR (e.status IN ('open', 'reversed') AND e.payout_id IS NOT NULL)
UNION ALL
-- Every payout has its place in the order statements read balances by (migration 0007 added the
-- column nullable; store::earnings::gather_payout sets it).
SELECT 'payout_without_seq', p.id, 'seq is null'
FROM payouts p WHERE p.seq IS NULL
)
UNION ALL
SELECT * FROM (
-- Refunds: running totals add up and never exceed the conversion.
SELECT 'refund_chain', conversion_id || '#' || seq, 'total ' || refunded_total || ' <> ' || total_before || ' + ' || amount_cents
FROM refund_steps WHERE refunded_total <> total_before + amount_cents OR seq <> position
UNION ALL
SELECT 'refund_exceeds_conversion', c.id, 'refunded ' || MAX(r.refunded_total) || ' of ' || c.amount_cents
FROM conversions c JOIN refunds r ON r.conversion_id = c.id
GROUP BY c.id HAVING MAX(r.refunded_total) > c.amount_cents
UNION ALL
-- Commission reversals never exceed the commission.
SELECT 'reversal_exceeds_commission', k.id,
       'commission ' || k.amount_cents || ', reversed ' || (CASE WHEN k.status = 'reversed' THEN k.amount_cents ELSE 0 END - COALESCE(SUM(a.amount_cents), 0))
FROM earnings k LEFT JOIN earnings a ON a.kind = 'adjustment' AND a.program = k.program AND a.conversion_id = k.conversion_id
WHERE k.kind = 'commission'
GROUP BY k.id HAVING CASE WHEN k.status = 'reversed' THEN k.amount_cents ELSE 0 END - COALESCE(SUM(a.amount_cents), 0) > k.amount_cents
UNION ALL
-- Referral bonuses: at most one per referral, and only for converted referrals.
SELECT 'bonus_without_conversion', t.source, 'referral ' || COALESCE(r.status, 'missing')
FROM credit_transactions t LEFT JOIN referrals r ON 'referral:' || r.id = t.source
WHERE t.source LIKE 'referral:%' AND COALESCE(r.status, '') <> 'converted'
)
UNION ALL
SELECT * FROM (
-- Referral bonuses (table referral_bonuses): a granted bonus of credits has exactly its own
-- credit transaction, of its amount, for its referrer ('referral:<id>' is UNIQUE: at most one).
SELECT 'bonus_grant_credit', b.referral_id, 'granted ' || b.credits || ', ledger ' || COALESCE(t.amount, 'none')
FROM referral_bonuses b
LEFT JOIN credit_transactions t ON t.user_id = b.referrer_id AND t.seq = b.credit_seq
                               AND t.source = 'referral:' || b.referral_id AND t.kind = 'bonus'
WHERE b.status = 'granted' AND b.credits > 0 AND (t.amount IS NULL OR t.amount <> b.credits)
UNION ALL
-- A referral credit transaction belongs to a granted bonus; a pending or cancelled one has none.
SELECT 'bonus_credit_without_grant', t.source, 'bonus ' || COALESCE(b.status, 'missing')
FROM credit_transactions t LEFT JOIN referral_bonuses b ON b.referral_id = substr(t.source, 10)
WHERE t.source LIKE 'referral:%'
  AND (COALESCE(b.status, '') <> 'granted' OR b.referrer_id <> t.user_id OR b.credit_seq IS NOT t.seq)
UNION ALL
-- Bonuses only for converted referrals, of the referral's referrer and converting payment.
SELECT 'bonus_referral_mismatch', b.referral_id, 'referral ' || COALESCE(r.status, 'missing')
FROM referral_bonuses b LEFT JOIN referrals r ON r.id = b.referral_id
WHERE COALESCE(r.status, '') <> 'converted' OR r.conversion_id IS NOT b.conversion_id OR r.referrer_id <> b.referrer_id
UNION ALL
-- Every converted referral has its bonus (written in the same batch).
SELECT 'converted_referral_without_bonus', r.id, 'conversion ' || COALESCE(r.conversion_id, 'none')
FROM referrals r LEFT JOIN referral_bonuses b ON b.referral_id = r.id
WHERE r.status = 'converted' AND b.referral_id IS NULL
UNION ALL
-- The referrer's `referrals` activity event is counted only with the grant.
SELECT 'bonus_counted_before_grant', b.referral_id, 'bonus ' || b.status
FROM referral_bonuses b JOIN activity_events e ON e.id = 'soundhash:referral:' || b.referral_id
WHERE b.status <> 'granted'
)
UNION ALL
-- Revenue and marketplace (nested: D1 allows 5 terms per compound SELECT).
SELECT * FROM (
SELECT * FROM (
-- Revenue: the creators' lines of a record sum to its creator part (platform + creator = gross
-- is a CHECK of the table).
SELECT 'revenue_lines_sum', r.id, 'creator part ' || r.creator_cents || ' <> lines ' || COALESCE(SUM(l.cents), 0)
FROM revenue_records r LEFT JOIN revenue_lines l ON l.record_id = r.id
GROUP BY r.id HAVING r.creator_cents <> COALESCE(SUM(l.cents), 0)
UNION ALL
-- A line is in its record's statement.
SELECT 'revenue_line_statement', l.record_id || '/' || l.creator_id, 'line in ' || l.statement_period || ', record in ' || r.statement_period
FROM revenue_lines l JOIN revenue_records r ON r.id = l.record_id
WHERE l.statement_period <> r.statement_period
UNION ALL
-- Pools: the allocations sum to the pool.
SELECT 'pool_allocation_sum', p.id, 'pool ' || p.gross_cents || ' <> allocated ' || COALESCE(SUM(r.gross_cents), 0)
FROM revenue_pools p LEFT JOIN revenue_records r ON r.pool_id = p.id
GROUP BY p.id HAVING p.gross_cents <> COALESCE(SUM(r.gross_cents), 0)
UNION ALL
-- A closed statement is never rewritten: no record landed in it after it closed (in D1's order).
SELECT 'revenue_after_close', r.id, 'record #' || r.seq || ' in statement ' || r.statement_period || ', closed after #' || p.records_seq
FROM revenue_records r JOIN revenue_periods p ON p.period = r.statement_period
WHERE r.seq > p.records_seq
UNION ALL
-- No record is in a statement passed over by a closing (its cents would never be earned).
SELECT 'revenue_statement_passed_over', r.id, 'statement ' || r.statement_period || ' was never closed, a later one was'
FROM revenue_records r
WHERE r.statement_period <= (SELECT MAX(period) FROM revenue_periods)
  AND NOT EXISTS (SELECT 1 FROM revenue_periods p WHERE p.period = r.statement_period)
)
UNION ALL
SELECT * FROM (
-- Closed statements: each creator's earnings row equals their lines in it (no row for a net of 0).
SELECT 'statement_earning', p.period || '/' || n.creator_id, 'lines ' || n.cents || ' <> earning ' || COALESCE(e.amount_cents, 0)
FROM revenue_periods p
JOIN (SELECT statement_period, creator_id, SUM(cents) AS cents FROM revenue_lines GROUP BY statement_period, creator_id) n
  ON n.statement_period = p.period
LEFT JOIN earnings e ON e.program = 'creator' AND e.payee_id = n.creator_id AND e.source = 'statement:' || p.period
WHERE n.cents <> COALESCE(e.amount_cents, 0)
UNION ALL
-- Every creator earning comes from a closed statement.
SELECT 'creator_earning_without_statement', e.id, 'source ' || COALESCE(e.source, 'none')
FROM earnings e
WHERE e.program = 'creator' AND NOT EXISTS (SELECT 1 FROM revenue_periods p WHERE e.source = 'statement:' || p.period)
)
UNION ALL
SELECT * FROM (
SELECT * FROM (
-- Marketplace: a completed or refunded order has its license and its download grant; a completed
-- order's seller part is its seller's earning; every seller earning comes from an order of
-- theirs; an item's sales
-- count its completed orders.
SELECT 'marketplace_order_license', o.id, 'order ' || o.status || ' without its license'
FROM marketplace_orders o
WHERE o.status <> 'pending' AND NOT EXISTS (SELECT 1 FROM marketplace_licenses l WHERE l.order_id = o.id)
UNION ALL
SELECT 'marketplace_order_grant', o.id, 'order ' || o.status || ' without its download grant'
FROM marketplace_orders o
WHERE o.status <> 'pending' AND NOT EXISTS (SELECT 1 FROM marketplace_downloads d WHERE d.order_id = o.id)
UNION ALL
SELECT 'marketplace_order_earning', o.id, 'seller part ' || o.seller_cents || ' <> earning ' || COALESCE(e.amount_cents, 0)
FROM marketplace_orders o
LEFT JOIN earnings e ON e.program = 'marketplace' AND e.payee_id = o.seller_id AND e.source = 'order:' || o.id AND e.kind = 'commission'
WHERE o.status = 'completed' AND o.seller_cents <> COALESCE(e.amount_cents, 0)
UNION ALL
-- A refunded order's license and download are revoked, and its seller's earning reversed or
-- netted by an adjustment of its amount.
SELECT 'marketplace_refund_effects', o.id, 'license ' || COALESCE(l.status, 'none') || ', download ' ||
       CASE WHEN d.revoked_at IS NULL THEN 'open' ELSE 'revoked' END || ', earning ' || COALESCE(e.status, 'none') ||
       ', adjustment ' || COALESCE(a.amount_cents, 0)
FROM marketplace_orders o
LEFT JOIN marketplace_licenses l ON l.order_id = o.id
LEFT JOIN marketplace_downloads d ON d.order_id = o.id
LEFT JOIN earnings e ON e.program = 'marketplace' AND e.payee_id = o.seller_id AND e.source = 'order:' || o.id AND e.kind = 'commission'
LEFT JOIN earnings a ON a.program = 'marketplace' AND a.payee_id = o.seller_id AND a.source = 'refund:order:' || o.id
WHERE o.status = 'refunded'
  AND (COALESCE(l.status, '') <> 'revoked' OR d.revoked_at IS NULL
       OR (e.id IS NOT NULL AND e.status <> 'reversed' AND COALESCE(a.amount_cents, 0) <> -e.amount_cents))
)
UNION ALL
SELECT * FROM (
SELECT 'marketplace_earning_without_order', e.id, 'source ' || COALESCE(e.source, 'none')
FROM earnings e
WHERE e.program = 'marketplace' AND e.kind = 'commission'
  AND NOT EXISTS (SELECT 1 FROM marketplace_orders o
                  WHERE o.id = substr(e.source, 7) AND e.source = 'order:' || o.id AND o.seller_id = e.payee_id AND o.status <> 'pending')
UNION ALL
SELECT 'marketplace_item_sales', i.id, 'sales ' || i.sales || ' <> completed orders ' || COALESCE(n.orders, 0)
FROM marketplace_items i
LEFT JOIN (SELECT item_id, COUNT(*) AS orders FROM marketplace_orders WHERE status = 'completed' GROUP BY item_id) n ON n.item_id = i.id
WHERE i.sales <> COALESCE(n.orders, 0)
UNION ALL
-- A license is active on at most its limit of instances.
SELECT 'marketplace_activation_limit', l.id, 'active instances ' || COUNT(*) || ' > limit ' || l.activation_limit
FROM marketplace_licenses l JOIN marketplace_activations a ON a.license_id = l.id AND a.deactivated_at IS NULL
WHERE l.activation_limit IS NOT NULL
GROUP BY l.id HAVING COUNT(*) > l.activation_limit
UNION ALL
-- An item's rating is its reviews' sum and count.
SELECT 'marketplace_item_rating', i.id, 'rating ' || i.rating_sum || '/' || i.review_count || ' <> reviews ' || COALESCE(r.total, 0) || '/' || COALESCE(r.n, 0)
FROM marketplace_items i
LEFT JOIN (SELECT item_id, SUM(rating) AS total, COUNT(*) AS n FROM marketplace_reviews GROUP BY item_id) r ON r.item_id = i.id
WHERE i.rating_sum <> COALESCE(r.total, 0) OR i.review_count <> COALESCE(r.n, 0)
UNION ALL
-- Every review is by a buyer whose order of the item is completed (a refund removes it).
SELECT 'marketplace_review_without_order', r.id, 'order ' || COALESCE(o.status, 'missing')
FROM marketplace_reviews r
LEFT JOIN marketplace_orders o ON o.id = r.order_id AND o.item_id = r.item_id AND o.buyer_id = r.buyer_id
WHERE COALESCE(o.status, '') <> 'completed'
)
)
);
