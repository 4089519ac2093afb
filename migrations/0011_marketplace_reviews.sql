-- Marketplace, last part (issue 12): buyers' reviews, and the indexes of the seller's dashboard.

-- One review per buyer and item, by a buyer whose order of the item is completed (`order_id`);
-- a second review replaces the first, and a refund of the order deletes it. The item's
-- `rating_sum` / `review_count` are recounted from this table in the batch of every change.
CREATE TABLE marketplace_reviews (
  id          TEXT PRIMARY KEY,
  item_id     TEXT NOT NULL,
  buyer_id    TEXT NOT NULL,
  order_id    TEXT NOT NULL,
  rating      INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
  title       TEXT NOT NULL,
  review_text TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  UNIQUE (item_id, buyer_id)
);
CREATE INDEX marketplace_reviews_by_item ON marketplace_reviews (item_id, updated_at, id);
-- The recount reads this index only (no row per review).
CREATE INDEX marketplace_reviews_ratings ON marketplace_reviews (item_id, rating);
CREATE INDEX marketplace_reviews_by_order ON marketplace_reviews (order_id);

-- An item's sales and revenue (the seller's item list), and its downloads.
CREATE INDEX marketplace_orders_by_item ON marketplace_orders (item_id, status);
CREATE INDEX marketplace_downloads_by_item ON marketplace_downloads (item_id);
