-- Marketplace refunds (issue 12): the batch that refunded an order (its other writes are guarded
-- by it, so of parallel refunds one has an effect), and orders found by their payment (Stripe's
-- payment intent, as `charge.refunded` names it).
ALTER TABLE marketplace_orders ADD COLUMN refund_batch TEXT;
CREATE INDEX marketplace_orders_by_payment ON marketplace_orders (payment_ref) WHERE payment_ref IS NOT NULL;
