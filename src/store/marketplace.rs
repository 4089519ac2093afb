//! SQL of the marketplace: `marketplace_items` (with their tags and search index, kept by the
//! triggers of migration 0008) and `marketplace_versions`.

use super::{args, Arg, Db, Error, Result};
use crate::domain::marketplace::{Category, File, Item, ItemStatus, Sort, Version};
use crate::domain::time::Timestamp;
use serde::Deserialize;

const ITEM_COLUMNS: &str = "i.seq, i.id, i.seller_id, i.title, i.description, i.category, i.tags, i.price_cents, i.currency,
    i.license_terms, i.activation_limit, i.fee_bps, i.status, i.version, i.sales, i.rating_sum, i.review_count,
    i.published_at, i.created_at, i.updated_at";

#[derive(Deserialize)]
struct ItemRow {
    seq: i64,
    id: String,
    seller_id: String,
    title: String,
    description: String,
    category: String,
    tags: String,
    price_cents: i64,
    currency: String,
    license_terms: String,
    activation_limit: Option<i64>,
    fee_bps: Option<u32>,
    status: String,
    version: i64,
    sales: i64,
    rating_sum: i64,
    review_count: i64,
    published_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ItemRow> for Item {
    type Error = Error;
    fn try_from(r: ItemRow) -> Result<Self> {
        let bad = |column, value: &str| Error::corrupt("marketplace_items", &r.id, column, value);
        Ok(Item {
            category: Category::parse(&r.category).ok_or_else(|| bad("category", &r.category))?,
            status: ItemStatus::parse(&r.status).ok_or_else(|| bad("status", &r.status))?,
            tags: serde_json::from_str(&r.tags).map_err(|_| bad("tags", &r.tags))?,
            id: r.id,
            seller_id: r.seller_id,
            title: r.title,
            description: r.description,
            price_cents: r.price_cents,
            currency: r.currency,
            license_terms: r.license_terms,
            activation_limit: r.activation_limit,
            fee_bps: r.fee_bps,
            version: r.version,
            sales: r.sales,
            rating_sum: r.rating_sum,
            review_count: r.review_count,
            published_at: r.published_at.map(Timestamp::from_unix),
            created_at: Timestamp::from_unix(r.created_at),
            updated_at: Timestamp::from_unix(r.updated_at),
        })
    }
}

fn tags_json(item: &Item) -> String {
    serde_json::to_string(&item.tags).unwrap_or_else(|_| "[]".into())
}

pub async fn insert(db: &Db, item: &Item) -> Result<()> {
    let sql = "INSERT INTO marketplace_items (id, seller_id, title, description, category, tags, price_cents, currency,
                   license_terms, activation_limit, fee_bps, status, version, created_at, updated_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)";
    db.run(
        sql,
        &args![
            &item.id,
            &item.seller_id,
            &item.title,
            &item.description,
            item.category.as_str(),
            tags_json(item),
            item.price_cents,
            &item.currency,
            &item.license_terms,
            item.activation_limit,
            item.fee_bps,
            item.status.as_str(),
            item.version,
            item.created_at.unix()
        ],
    )
    .await?;
    Ok(())
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Item>> {
    let sql = format!("SELECT {ITEM_COLUMNS} FROM marketplace_items i WHERE i.id = ?1");
    db.first::<ItemRow>(&sql, &args![id]).await?.map(Item::try_from).transpose()
}

/// Writes `next` if the item is still at `next.version - 1` (the version it was read at), else
/// `None`: of concurrent edits, one lands and the others read again.
pub async fn update(db: &Db, next: &Item) -> Result<Option<Item>> {
    let sql = format!(
        "UPDATE marketplace_items SET title = ?2, description = ?3, category = ?4, tags = ?5, price_cents = ?6,
             license_terms = ?7, activation_limit = ?8, fee_bps = ?9, status = ?10, published_at = ?11,
             version = ?12, updated_at = ?13
         WHERE id = ?1 AND version = ?12 - 1
         RETURNING {}",
        // (RETURNING takes no table alias.)
        ITEM_COLUMNS.replace("i.", "")
    );
    let row = db
        .first::<ItemRow>(
            &sql,
            &args![
                &next.id,
                &next.title,
                &next.description,
                next.category.as_str(),
                tags_json(next),
                next.price_cents,
                &next.license_terms,
                next.activation_limit,
                next.fee_bps,
                next.status.as_str(),
                next.published_at.map(Timestamp::unix),
                next.version,
                next.updated_at.unix()
            ],
        )
        .await?;
    row.map(Item::try_from).transpose()
}

/// A catalogue search: published items only.
pub struct Search<'a> {
    /// An FTS5 query (`domain::marketplace::fts_query`), or none.
    pub fts: Option<&'a str>,
    pub category: Option<Category>,
    pub tag: Option<&'a str>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub sort: Sort,
    pub offset: i64,
    pub limit: u32,
}

/// One page of the search (`limit` rows from `offset`), ties broken by newest first.
pub async fn search(db: &Db, s: &Search<'_>) -> Result<Vec<Item>> {
    // Fixed SQL fragments only; every value is bound. bm25: lower ranks better; title weighs
    // most, then tags, then the description.
    let order = match (s.sort, s.fts.is_some()) {
        (Sort::Relevance, true) => "bm25(marketplace_search, 10.0, 5.0, 1.0)",
        (Sort::Relevance | Sort::Newest, _) => "i.published_at DESC",
        (Sort::PriceAsc, _) => "i.price_cents ASC",
        (Sort::PriceDesc, _) => "i.price_cents DESC",
        (Sort::Popular, _) => "i.sales DESC",
        // Items without reviews last; then the higher average.
        (Sort::Rating, _) => "i.review_count = 0, i.rating_sum * 1.0 / MAX(i.review_count, 1) DESC, i.review_count DESC",
    };
    let from = if s.fts.is_some() {
        "marketplace_search JOIN marketplace_items i ON i.seq = marketplace_search.rowid WHERE marketplace_search MATCH ?1 AND"
    } else {
        "marketplace_items i WHERE ?1 IS NULL AND"
    };
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM {from} i.status = 'published'
           AND (?2 IS NULL OR i.category = ?2)
           AND (?3 IS NULL OR EXISTS (SELECT 1 FROM marketplace_item_tags t WHERE t.tag = ?3 AND t.item_id = i.id))
           AND (?4 IS NULL OR i.price_cents >= ?4) AND (?5 IS NULL OR i.price_cents <= ?5)
         ORDER BY {order}, i.seq DESC LIMIT ?6 OFFSET ?7"
    );
    let rows = db
        .all::<ItemRow>(
            &sql,
            &args![s.fts, s.category.map(Category::as_str), s.tag, s.min_price, s.max_price, s.limit, s.offset],
        )
        .await?;
    rows.into_iter().map(Item::try_from).collect()
}

/// A seller's items, newest first, before the cursor (`seq`).
pub async fn seller_items(db: &Db, seller_id: &str, before: Option<i64>, limit: u32) -> Result<Vec<(i64, Item)>> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM marketplace_items i WHERE i.seller_id = ?1 AND (?2 IS NULL OR i.seq < ?2)
         ORDER BY i.seq DESC LIMIT ?3"
    );
    let rows = db.all::<ItemRow>(&sql, &args![seller_id, before, limit]).await?;
    rows.into_iter().map(|r| Ok((r.seq, Item::try_from(r)?))).collect()
}

// --- versions ----------------------------------------------------------------------------------

const VERSION_COLUMNS: &str =
    "id, item_id, version_number, release_notes, file_key, file_size, file_sha256, content_type, uploaded_at, created_at";

#[derive(Deserialize)]
struct VersionRow {
    id: String,
    item_id: String,
    version_number: String,
    release_notes: String,
    file_key: Option<String>,
    file_size: Option<i64>,
    file_sha256: Option<String>,
    content_type: Option<String>,
    uploaded_at: Option<i64>,
    created_at: i64,
}

impl From<VersionRow> for Version {
    fn from(r: VersionRow) -> Self {
        let file = match (r.file_key, r.uploaded_at) {
            (Some(key), Some(at)) => Some(File {
                key,
                size: r.file_size.unwrap_or(0),
                sha256: r.file_sha256.unwrap_or_default(),
                content_type: r.content_type.unwrap_or_default(),
                uploaded_at: Timestamp::from_unix(at),
            }),
            _ => None,
        };
        Version {
            id: r.id,
            item_id: r.item_id,
            version_number: r.version_number,
            release_notes: r.release_notes,
            file,
            created_at: Timestamp::from_unix(r.created_at),
        }
    }
}

/// Every version of an item, in the order they were created.
pub async fn versions(db: &Db, item_id: &str) -> Result<Vec<Version>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM marketplace_versions WHERE item_id = ?1 ORDER BY created_at, rowid");
    Ok(db.all::<VersionRow>(&sql, &args![item_id]).await?.into_iter().map(Version::from).collect())
}

/// Adds a version, if the item still has exactly `known` versions (so two versions created at
/// once are both checked against each other); `false` when it does not (read again).
pub async fn add_version(db: &Db, v: &Version, known: usize) -> Result<bool> {
    let sql = "INSERT INTO marketplace_versions (id, item_id, version_number, release_notes, created_at)
               SELECT ?1, ?2, ?3, ?4, ?5 WHERE (SELECT COUNT(*) FROM marketplace_versions WHERE item_id = ?2) = ?6
               ON CONFLICT (item_id, version_number) DO NOTHING";
    let changed = db
        .run(sql, &args![&v.id, &v.item_id, &v.version_number, &v.release_notes, v.created_at.unix(), known as i64])
        .await?;
    Ok(changed == 1)
}

/// Records the uploaded file of a version that has none yet; `false` when it has one (another
/// upload got there first).
pub async fn set_file(db: &Db, version_id: &str, file: &File) -> Result<bool> {
    let sql = "UPDATE marketplace_versions SET file_key = ?2, file_size = ?3, file_sha256 = ?4, content_type = ?5, uploaded_at = ?6
               WHERE id = ?1 AND file_key IS NULL";
    let args: [Arg; 6] = args![version_id, &file.key, file.size, &file.sha256, &file.content_type, file.uploaded_at.unix()];
    Ok(db.run(sql, &args).await? == 1)
}
