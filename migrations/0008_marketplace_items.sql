-- Marketplace, first part (issue 12): listings, their versions (each with its file in R2), and
-- full-text search over them. Orders, licenses and downloads follow in a later migration.

-- `seq` (the rowid, kept by VACUUM as an INTEGER PRIMARY KEY) is the row of the item in the
-- search index. `version` counts the item's changes: a PATCH lands only at the version it read
-- (and at the one the client read, with If-Match). `tags` is the JSON array of normalized tags.
-- `rating_sum` / `review_count` are kept with the reviews, in the same batch. `fee_bps` is an
-- admin's rate for this item; NULL: MARKETPLACE_FEE_BPS at the time of each sale.
CREATE TABLE marketplace_items (
  seq              INTEGER PRIMARY KEY,
  id               TEXT NOT NULL UNIQUE,
  seller_id        TEXT NOT NULL,
  title            TEXT NOT NULL,
  description      TEXT NOT NULL DEFAULT '',
  category         TEXT NOT NULL CHECK (category IN ('fingerprint_database', 'audio_dataset', 'model', 'plugin', 'other')),
  tags             TEXT NOT NULL DEFAULT '[]',
  price_cents      INTEGER NOT NULL CHECK (price_cents >= 0),
  currency         TEXT NOT NULL,
  license_terms    TEXT NOT NULL DEFAULT '',
  activation_limit INTEGER CHECK (activation_limit IS NULL OR activation_limit > 0),
  fee_bps          INTEGER CHECK (fee_bps IS NULL OR fee_bps BETWEEN 0 AND 10000),
  status           TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'archived')),
  version          INTEGER NOT NULL DEFAULT 1,
  sales            INTEGER NOT NULL DEFAULT 0,
  rating_sum       INTEGER NOT NULL DEFAULT 0,
  review_count     INTEGER NOT NULL DEFAULT 0,
  published_at     INTEGER,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE INDEX marketplace_items_by_seller ON marketplace_items (seller_id, seq);
CREATE INDEX marketplace_items_published ON marketplace_items (status, published_at);

-- One row per tag of an item, for `tag=` filters.
CREATE TABLE marketplace_item_tags (
  tag     TEXT NOT NULL,
  item_id TEXT NOT NULL,
  PRIMARY KEY (tag, item_id)
) WITHOUT ROWID;

-- Full-text search (SQLite FTS5) over title, tags and description; row = the item's seq. Kept in
-- step by triggers, so no write path can forget it.
CREATE VIRTUAL TABLE marketplace_search USING fts5 (title, tags, description, tokenize = 'unicode61 remove_diacritics 2');

CREATE TRIGGER marketplace_items_search_insert AFTER INSERT ON marketplace_items BEGIN
  INSERT INTO marketplace_search (rowid, title, tags, description) VALUES (new.seq, new.title, new.tags, new.description);
END;

CREATE TRIGGER marketplace_items_search_update AFTER UPDATE OF title, tags, description ON marketplace_items BEGIN
  UPDATE marketplace_search SET title = new.title, tags = new.tags, description = new.description WHERE rowid = new.seq;
END;

CREATE TRIGGER marketplace_items_tags_insert AFTER INSERT ON marketplace_items BEGIN
  INSERT INTO marketplace_item_tags (tag, item_id) SELECT value, new.id FROM json_each(new.tags);
END;

CREATE TRIGGER marketplace_items_tags_update AFTER UPDATE OF tags ON marketplace_items BEGIN
  DELETE FROM marketplace_item_tags WHERE item_id = new.id;
  INSERT INTO marketplace_item_tags (tag, item_id) SELECT value, new.id FROM json_each(new.tags);
END;

-- Versions of an item. The file (in R2 under `file_key`) is uploaded after the version is
-- created; a version with a file is available, and never changes again.
CREATE TABLE marketplace_versions (
  id             TEXT PRIMARY KEY,
  item_id        TEXT NOT NULL,
  version_number TEXT NOT NULL,
  release_notes  TEXT NOT NULL DEFAULT '',
  file_key       TEXT,
  file_size      INTEGER,
  file_sha256    TEXT,
  content_type   TEXT,
  uploaded_at    INTEGER,
  created_at     INTEGER NOT NULL,
  UNIQUE (item_id, version_number),
  CHECK ((file_key IS NULL) = (uploaded_at IS NULL))
);
