//! SQL of the marketplace: `marketplace_items` (with their tags and search index, kept by the
//! triggers of migration 0008) and `marketplace_versions`.

use super::{args, Arg, Db, Error, Result};
use crate::domain::marketplace::{Category, File, Item, ItemStatus, LicenseStatus, Order, OrderStatus, ReviewFields, Sort, Version};
use crate::domain::rewards::Event;
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
    /// Only in the seller's list: the seller's part of the item's completed orders.
    #[serde(default)]
    revenue_cents: i64,
    /// Only in the seller's list: downloads through all of the item's grants.
    #[serde(default)]
    downloads: i64,
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

/// A seller's item with what it earned and how often it was downloaded.
pub struct SellerItem {
    pub seq: i64,
    pub item: Item,
    pub revenue_cents: i64,
    pub downloads: i64,
}

/// A seller's items, newest first, before the cursor (`seq`).
pub async fn seller_items(db: &Db, seller_id: &str, before: Option<i64>, limit: u32) -> Result<Vec<SellerItem>> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS},
             (SELECT COALESCE(SUM(o.seller_cents), 0) FROM marketplace_orders o WHERE o.item_id = i.id AND o.status = 'completed') AS revenue_cents,
             (SELECT COALESCE(SUM(d.downloads), 0) FROM marketplace_downloads d WHERE d.item_id = i.id) AS downloads
         FROM marketplace_items i WHERE i.seller_id = ?1 AND (?2 IS NULL OR i.seq < ?2)
         ORDER BY i.seq DESC LIMIT ?3"
    );
    let rows = db.all::<ItemRow>(&sql, &args![seller_id, before, limit]).await?;
    rows.into_iter()
        .map(|r| {
            let (seq, revenue_cents, downloads) = (r.seq, r.revenue_cents, r.downloads);
            Ok(SellerItem { seq, item: Item::try_from(r)?, revenue_cents, downloads })
        })
        .collect()
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
    // (At most MAX_VERSIONS exist: versions are added only through `check_new_version`.)
    let sql = format!("SELECT {VERSION_COLUMNS} FROM marketplace_versions WHERE item_id = ?1 ORDER BY created_at, rowid LIMIT ?2");
    let limit = crate::domain::marketplace::MAX_VERSIONS as u32 + 1;
    Ok(db.all::<VersionRow>(&sql, &args![item_id, limit]).await?.into_iter().map(Version::from).collect())
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

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

// --- orders ------------------------------------------------------------------------------------

const ORDER_COLUMNS: &str = "id, item_id, buyer_id, seller_id, price_cents, fee_bps, fee_cents, seller_cents, currency, status,
    checkout_url, created_at, completed_at, refunded_at";

#[derive(Deserialize)]
struct OrderRow {
    id: String,
    item_id: String,
    buyer_id: String,
    seller_id: String,
    price_cents: i64,
    fee_bps: u32,
    fee_cents: i64,
    seller_cents: i64,
    currency: String,
    status: String,
    checkout_url: Option<String>,
    created_at: i64,
    completed_at: Option<i64>,
    refunded_at: Option<i64>,
}

impl TryFrom<OrderRow> for Order {
    type Error = Error;
    fn try_from(r: OrderRow) -> Result<Self> {
        Ok(Order {
            status: OrderStatus::parse(&r.status).ok_or_else(|| Error::corrupt("marketplace_orders", &r.id, "status", &r.status))?,
            id: r.id,
            item_id: r.item_id,
            buyer_id: r.buyer_id,
            seller_id: r.seller_id,
            price_cents: r.price_cents,
            fee_bps: r.fee_bps,
            fee_cents: r.fee_cents,
            seller_cents: r.seller_cents,
            currency: r.currency,
            checkout_url: r.checkout_url,
            created_at: Timestamp::from_unix(r.created_at),
            completed_at: r.completed_at.map(Timestamp::from_unix),
            refunded_at: r.refunded_at.map(Timestamp::from_unix),
        })
    }
}

/// What placing an order did.
pub enum Placed {
    Placed,
    /// The buyer's live (pending or completed) order of the item, placed before.
    Live(Box<Order>),
    /// The item is no longer as read (`item_version`), or no longer published: nothing placed.
    ItemChanged,
}

/// Places `order` if the item is still published at `item_version` (the price and fee the order
/// snapshots are the item's at that moment) and the buyer has no live order of it.
pub async fn place(db: &Db, order: &Order, item_version: i64) -> Result<Placed> {
    let sql = "INSERT INTO marketplace_orders (id, item_id, buyer_id, seller_id, price_cents, fee_bps, fee_cents, seller_cents,
                   currency, status, created_at, updated_at)
               SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10
               FROM marketplace_items WHERE id = ?2 AND status = 'published' AND version = ?11
               ON CONFLICT DO NOTHING";
    let args = args![
        &order.id,
        &order.item_id,
        &order.buyer_id,
        &order.seller_id,
        order.price_cents,
        order.fee_bps,
        order.fee_cents,
        order.seller_cents,
        &order.currency,
        order.created_at.unix(),
        item_version
    ];
    if db.run(sql, &args).await? == 1 {
        return Ok(Placed::Placed);
    }
    let sql = format!("SELECT {ORDER_COLUMNS} FROM marketplace_orders WHERE item_id = ?1 AND buyer_id = ?2 AND status <> 'refunded'");
    Ok(match db.first::<OrderRow>(&sql, &args![&order.item_id, &order.buyer_id]).await? {
        Some(live) => Placed::Live(Box::new(live.try_into()?)),
        None => Placed::ItemChanged,
    })
}

/// Records the Checkout Session of a pending order (the first one only).
pub async fn set_checkout(db: &Db, order_id: &str, session_id: &str, url: &str, now: Timestamp) -> Result<()> {
    let sql = "UPDATE marketplace_orders SET checkout_session_id = ?2, checkout_url = ?3, updated_at = ?4
               WHERE id = ?1 AND status = 'pending' AND checkout_session_id IS NULL";
    db.run(sql, &args![order_id, session_id, url, now.unix()]).await?;
    Ok(())
}

/// The order a Checkout Session was opened for, with the session's id as recorded.
pub async fn order_of_checkout(db: &Db, order_id: &str) -> Result<Option<(Order, Option<String>)>> {
    #[derive(Deserialize)]
    struct Row {
        checkout_session_id: Option<String>,
    }
    let Some(order) = find_order(db, order_id).await? else { return Ok(None) };
    let row = db.first::<Row>("SELECT checkout_session_id FROM marketplace_orders WHERE id = ?1", &args![order_id]).await?;
    Ok(Some((order, row.and_then(|r| r.checkout_session_id))))
}

pub async fn find_order(db: &Db, id: &str) -> Result<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM marketplace_orders WHERE id = ?1");
    db.first::<OrderRow>(&sql, &args![id]).await?.map(Order::try_from).transpose()
}

/// What completing an order creates, with ids and secrets drawn by the caller.
pub struct Completion<'a> {
    pub order: &'a Order,
    pub license_id: &'a str,
    pub license_key: &'a str,
    pub key_hash: &'a str,
    pub grant_id: &'a str,
    pub grant_expires: Timestamp,
    /// When the seller's earning becomes available.
    pub available_at: Timestamp,
    pub payment_ref: Option<&'a str>,
    /// The seller's `revenue_cents` activity (none for a sale that pays the seller nothing).
    pub event: Option<&'a Event>,
    pub now: Timestamp,
}

/// Completes a pending order in one batch: the order, its license (the item's activation limit
/// at this moment), its download grant, the seller's earning (`program = 'marketplace'`, held),
/// the item's sales count and the seller's activity. Every write after the first is guarded by
/// this batch's license, so of parallel completions (a webhook delivered twice at once) exactly
/// one has an effect. Whether this call completed it.
pub async fn complete(db: &Db, c: &Completion<'_>) -> Result<bool> {
    let o = c.order;
    let now = c.now.unix();
    let mine = "EXISTS (SELECT 1 FROM marketplace_licenses WHERE id = ?1)";
    let mut statements = vec![
        db.statement(
            "UPDATE marketplace_orders SET status = 'completed', completed_at = ?2, payment_ref = COALESCE(?3, payment_ref), updated_at = ?2
             WHERE id = ?1 AND status = 'pending'",
            &args![&o.id, now, c.payment_ref],
        )?,
        db.statement(
            "INSERT INTO marketplace_licenses (id, order_id, item_id, buyer_id, license_key, key_hash, status, activation_limit, created_at, updated_at)
             SELECT ?1, o.id, o.item_id, o.buyer_id, ?3, ?4, 'active', i.activation_limit, ?5, ?5
             FROM marketplace_orders o JOIN marketplace_items i ON i.id = o.item_id
             WHERE o.id = ?2 AND o.status = 'completed'
             ON CONFLICT DO NOTHING",
            &args![c.license_id, &o.id, c.license_key, c.key_hash, now],
        )?,
        db.statement(
            &format!(
                "INSERT INTO marketplace_downloads (id, order_id, item_id, buyer_id, expires_at, created_at)
                 SELECT ?2, ?3, ?4, ?5, ?6, ?7 WHERE {mine}"
            ),
            &args![c.license_id, c.grant_id, &o.id, &o.item_id, &o.buyer_id, c.grant_expires.unix(), now],
        )?,
        db.statement(
            &format!("UPDATE marketplace_items SET sales = sales + 1 WHERE id = ?2 AND {mine}"),
            &args![c.license_id, &o.item_id],
        )?,
    ];
    if o.seller_cents > 0 {
        statements.push(db.statement(
            &format!(
                "INSERT INTO earnings (id, program, payee_id, kind, amount_cents, rate_bps, status, available_at, source, created_at, updated_at)
                 SELECT ?2, ?3, ?4, 'commission', ?5, ?6, 'open', ?7, ?8, ?9, ?9 WHERE {mine}"
            ),
            &args![
                c.license_id,
                crate::ids::new_id(),
                super::earnings::MARKETPLACE,
                &o.seller_id,
                o.seller_cents,
                10_000 - o.fee_bps,
                c.available_at.unix(),
                format!("order:{}", o.id),
                now
            ],
        )?);
    }
    if let Some(event) = c.event {
        let guard = "EXISTS (SELECT 1 FROM marketplace_licenses WHERE id = ?4)";
        statements.extend(super::rewards::count_if(db, c.license_id, std::slice::from_ref(event), c.now, Some((guard, c.license_id)))?);
    }
    statements.push(db.statement("SELECT COUNT(*) AS n FROM marketplace_licenses WHERE id = ?1", &args![c.license_id])?);
    let n = statements.len();
    let results = db.batch(statements).await?;
    Ok(super::rows::<CountRow>(&results, n - 1)?.first().is_some_and(|r| r.n == 1))
}

// --- purchases, licenses, downloads ------------------------------------------------------------

/// A buyer's order with its license and download grant (once completed). (Flat: D1's rows
/// reach serde as JavaScript values, whose numbers a flattened struct would read as floats.)
#[derive(Deserialize)]
pub struct PurchaseRow {
    id: String,
    item_id: String,
    buyer_id: String,
    seller_id: String,
    price_cents: i64,
    fee_bps: u32,
    fee_cents: i64,
    seller_cents: i64,
    currency: String,
    status: String,
    checkout_url: Option<String>,
    created_at: i64,
    completed_at: Option<i64>,
    refunded_at: Option<i64>,
    pub license_key: Option<String>,
    pub license_status: Option<String>,
    pub activation_limit: Option<i64>,
    pub activations: Option<i64>,
    pub grant_id: Option<String>,
    pub grant_expires_at: Option<i64>,
    pub grant_revoked_at: Option<i64>,
}

impl PurchaseRow {
    pub fn order(&self) -> Result<Order> {
        let r = self;
        OrderRow {
            id: r.id.clone(),
            item_id: r.item_id.clone(),
            buyer_id: r.buyer_id.clone(),
            seller_id: r.seller_id.clone(),
            price_cents: r.price_cents,
            fee_bps: r.fee_bps,
            fee_cents: r.fee_cents,
            seller_cents: r.seller_cents,
            currency: r.currency.clone(),
            status: r.status.clone(),
            checkout_url: r.checkout_url.clone(),
            created_at: r.created_at,
            completed_at: r.completed_at,
            refunded_at: r.refunded_at,
        }
        .try_into()
    }

    /// The list's sort key: (creation time, order id).
    pub fn cursor(&self) -> (i64, String) {
        (self.created_at, self.id.clone())
    }

    pub fn license_status(&self) -> Result<Option<LicenseStatus>> {
        self.license_status
            .as_deref()
            .map(|s| LicenseStatus::parse(s).ok_or_else(|| Error::corrupt("marketplace_licenses", &self.id, "status", s)))
            .transpose()
    }
}

const PURCHASE_SELECT: &str = "SELECT o.id, o.item_id, o.buyer_id, o.seller_id, o.price_cents, o.fee_bps, o.fee_cents, o.seller_cents,
        o.currency, o.status, o.checkout_url, o.created_at, o.completed_at, o.refunded_at,
        l.license_key, l.status AS license_status, l.activation_limit,
        (SELECT COUNT(*) FROM marketplace_activations a WHERE a.license_id = l.id AND a.deactivated_at IS NULL) AS activations,
        d.id AS grant_id, d.expires_at AS grant_expires_at, d.revoked_at AS grant_revoked_at
    FROM marketplace_orders o
    LEFT JOIN marketplace_licenses l ON l.order_id = o.id
    LEFT JOIN marketplace_downloads d ON d.order_id = o.id";

/// One of the buyer's purchases (another buyer's → `None`).
pub async fn purchase(db: &Db, buyer_id: &str, order_id: &str) -> Result<Option<PurchaseRow>> {
    db.first(&format!("{PURCHASE_SELECT} WHERE o.id = ?1 AND o.buyer_id = ?2"), &args![order_id, buyer_id]).await
}

/// The buyer's purchases, newest first, before the cursor (creation time, id).
pub async fn purchases(db: &Db, buyer_id: &str, before: Option<&(i64, String)>, limit: u32) -> Result<Vec<PurchaseRow>> {
    let (at, id) = before.map_or((None, None), |(t, i)| (Some(*t), Some(i.as_str())));
    let sql = format!(
        "{PURCHASE_SELECT} WHERE o.buyer_id = ?1 AND (?2 IS NULL OR o.created_at < ?2 OR (o.created_at = ?2 AND o.id < ?3))
         ORDER BY o.created_at DESC, o.id DESC LIMIT ?4"
    );
    db.all(&sql, &args![buyer_id, at, id, limit]).await
}

/// A license as the public license endpoints see it.
#[derive(Deserialize)]
pub struct LicenseRow {
    pub id: String,
    pub item_id: String,
    pub status: String,
    pub activation_limit: Option<i64>,
    /// Active instances when read.
    pub active: i64,
    /// The licensed item's title and status.
    pub item_title: String,
    pub item_status: String,
}

impl LicenseRow {
    pub fn status(&self) -> Result<LicenseStatus> {
        LicenseStatus::parse(&self.status).ok_or_else(|| Error::corrupt("marketplace_licenses", &self.id, "status", &self.status))
    }
}

pub async fn license_by_hash(db: &Db, key_hash: &str) -> Result<Option<LicenseRow>> {
    let sql = "SELECT l.id, l.item_id, l.status, l.activation_limit,
                   (SELECT COUNT(*) FROM marketplace_activations a WHERE a.license_id = l.id AND a.deactivated_at IS NULL) AS active,
                   i.title AS item_title, i.status AS item_status
               FROM marketplace_licenses l JOIN marketplace_items i ON i.id = l.item_id WHERE l.key_hash = ?1";
    db.first(sql, &args![key_hash]).await
}

/// An instance a license is active on.
#[derive(Deserialize)]
pub struct ActivationRow {
    pub id: String,
    pub instance_name: String,
    pub created_at: i64,
    /// Active instances of the license (this one included).
    pub active: i64,
}

/// Activates `instance_name` on a license if it is active and below its limit, in one
/// statement (so parallel activations never pass the limit); the same name again finds its
/// instance. The instance, and whether this call created it; `None` when it could not.
pub async fn activate(db: &Db, license_id: &str, activation_id: &str, instance_name: &str, now: Timestamp) -> Result<Option<(ActivationRow, bool)>> {
    let statements = vec![
        db.statement(
            "INSERT INTO marketplace_activations (id, license_id, instance_name, created_at)
             SELECT ?1, l.id, ?3, ?4 FROM marketplace_licenses l
             WHERE l.id = ?2 AND l.status = 'active'
               AND (l.activation_limit IS NULL
                    OR (SELECT COUNT(*) FROM marketplace_activations a WHERE a.license_id = l.id AND a.deactivated_at IS NULL) < l.activation_limit)
             ON CONFLICT DO NOTHING",
            &args![activation_id, license_id, instance_name, now.unix()],
        )?,
        db.statement(
            "SELECT id, instance_name, created_at,
                 (SELECT COUNT(*) FROM marketplace_activations b WHERE b.license_id = ?1 AND b.deactivated_at IS NULL) AS active
             FROM marketplace_activations WHERE license_id = ?1 AND instance_name = ?2 AND deactivated_at IS NULL",
            &args![license_id, instance_name],
        )?,
    ];
    let results = db.batch(statements).await?;
    let row = super::rows::<ActivationRow>(&results, 1)?.pop();
    Ok(row.map(|r| {
        let created = r.id == activation_id;
        (r, created)
    }))
}

/// Active instances of a license.
pub async fn active_instances(db: &Db, license_id: &str) -> Result<i64> {
    let sql = "SELECT COUNT(*) AS n FROM marketplace_activations WHERE license_id = ?1 AND deactivated_at IS NULL";
    Ok(db.first::<CountRow>(sql, &args![license_id]).await?.map_or(0, |r| r.n))
}

/// Whether `instance_id` is an active instance of the license.
pub async fn instance_active(db: &Db, license_id: &str, instance_id: &str) -> Result<bool> {
    let sql = "SELECT COUNT(*) AS n FROM marketplace_activations WHERE id = ?1 AND license_id = ?2 AND deactivated_at IS NULL";
    Ok(db.first::<CountRow>(sql, &args![instance_id, license_id]).await?.is_some_and(|r| r.n == 1))
}

/// Frees an instance of the license; whether it was active.
pub async fn deactivate(db: &Db, license_id: &str, instance_id: &str, now: Timestamp) -> Result<bool> {
    let sql = "UPDATE marketplace_activations SET deactivated_at = ?3 WHERE id = ?1 AND license_id = ?2 AND deactivated_at IS NULL";
    Ok(db.run(sql, &args![instance_id, license_id, now.unix()]).await? == 1)
}

/// Gives the buyer's license of an order a new key (the old one stops at once); whether it did
/// (a revoked license keeps its key).
pub async fn rotate_key(db: &Db, order_id: &str, buyer_id: &str, key: &str, key_hash: &str, now: Timestamp) -> Result<bool> {
    let sql = "UPDATE marketplace_licenses SET license_key = ?3, key_hash = ?4, updated_at = ?5
               WHERE order_id = ?1 AND buyer_id = ?2 AND status <> 'revoked'";
    Ok(db.run(sql, &args![order_id, buyer_id, key, key_hash, now.unix()]).await? == 1)
}

/// A download grant with what decides whether it opens.
#[derive(Deserialize)]
pub struct GrantRow {
    pub item_id: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub order_status: String,
    pub item_title: String,
}

/// A download grant with its item's title and versions (one round trip).
pub async fn grant(db: &Db, grant_id: &str) -> Result<Option<(GrantRow, Vec<Version>)>> {
    let limit = crate::domain::marketplace::MAX_VERSIONS as u32 + 1;
    let statements = vec![
        db.statement(
            "SELECT d.item_id, d.expires_at, d.revoked_at, o.status AS order_status, i.title AS item_title
             FROM marketplace_downloads d JOIN marketplace_orders o ON o.id = d.order_id JOIN marketplace_items i ON i.id = d.item_id
             WHERE d.id = ?1",
            &args![grant_id],
        )?,
        db.statement(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM marketplace_versions
                 WHERE item_id = (SELECT item_id FROM marketplace_downloads WHERE id = ?1) ORDER BY created_at, rowid LIMIT ?2"
            ),
            &args![grant_id, limit],
        )?,
    ];
    let results = db.batch(statements).await?;
    let Some(grant) = super::rows::<GrantRow>(&results, 0)?.pop() else { return Ok(None) };
    let versions = super::rows::<VersionRow>(&results, 1)?.into_iter().map(Version::from).collect();
    Ok(Some((grant, versions)))
}

pub async fn count_download(db: &Db, grant_id: &str) -> Result<()> {
    db.run("UPDATE marketplace_downloads SET downloads = downloads + 1 WHERE id = ?1", &args![grant_id]).await?;
    Ok(())
}

/// The completed order paid by `payment_ref` (Stripe's payment intent), if any.
pub async fn order_of_payment(db: &Db, payment_ref: &str) -> Result<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM marketplace_orders WHERE payment_ref = ?1 AND status <> 'pending' LIMIT 1");
    db.first::<OrderRow>(&sql, &args![payment_ref]).await?.map(Order::try_from).transpose()
}

/// Refunds a completed order in one batch, as batch `batch`: the order refunded, its license
/// revoked, its download grant revoked, the item's sales count lowered, the buyer's review
/// removed (and the item's rating recounted), and the seller's earning reversed while it is open, else (in a payout or paid) an adjustment of its amount netted
/// against the seller's next payout. Every write after the first is guarded by this batch, so
/// of parallel refunds (a webhook delivered twice at once, an admin) one has an effect. Whether
/// this call refunded it.
pub async fn refund_order(db: &Db, order: &Order, batch: &str, now: Timestamp) -> Result<bool> {
    let now = now.unix();
    let mine = "EXISTS (SELECT 1 FROM marketplace_orders WHERE id = ?1 AND refund_batch = ?2)";
    let source = format!("order:{}", order.id);
    let statements = vec![
        db.statement(
            "UPDATE marketplace_orders SET status = 'refunded', refunded_at = ?3, refund_batch = ?2, updated_at = ?3
             WHERE id = ?1 AND status = 'completed'",
            &args![&order.id, batch, now],
        )?,
        db.statement(
            &format!("UPDATE marketplace_licenses SET status = 'revoked', updated_at = ?3 WHERE order_id = ?1 AND {mine}"),
            &args![&order.id, batch, now],
        )?,
        db.statement(
            &format!("UPDATE marketplace_downloads SET revoked_at = ?3 WHERE order_id = ?1 AND revoked_at IS NULL AND {mine}"),
            &args![&order.id, batch, now],
        )?,
        db.statement(
            &format!("UPDATE marketplace_items SET sales = sales - 1 WHERE id = ?3 AND {mine}"),
            &args![&order.id, batch, &order.item_id],
        )?,
        db.statement(
            &format!(
                "UPDATE earnings SET status = 'reversed', updated_at = ?5
                 WHERE program = ?3 AND payee_id = ?4 AND source = ?6 AND kind = 'commission' AND status = 'open' AND {mine}"
            ),
            &args![&order.id, batch, super::earnings::MARKETPLACE, &order.seller_id, now, &source],
        )?,
        db.statement(
            &format!(
                "INSERT INTO earnings (id, program, payee_id, kind, amount_cents, status, available_at, source, created_at, updated_at)
                 SELECT ?3, ?4, ?5, 'adjustment', -e.amount_cents, 'open', ?6, 'refund:' || ?7, ?6, ?6
                 FROM earnings e
                 WHERE e.program = ?4 AND e.payee_id = ?5 AND e.source = ?7 AND e.kind = 'commission'
                   AND e.status IN ('in_payout', 'paid') AND {mine}"
            ),
            &args![&order.id, batch, crate::ids::new_id(), super::earnings::MARKETPLACE, &order.seller_id, now, &source],
        )?,
        db.statement(&format!("DELETE FROM marketplace_reviews WHERE order_id = ?1 AND {mine}"), &args![&order.id, batch])?,
        db.statement(
            &recount_rating("AND EXISTS (SELECT 1 FROM marketplace_orders WHERE id = ?2 AND refund_batch = ?3)"),
            &args![&order.item_id, &order.id, batch],
        )?,
        db.statement("SELECT COUNT(*) AS n FROM marketplace_orders WHERE id = ?1 AND refund_batch = ?2", &args![&order.id, batch])?,
    ];
    let n = statements.len();
    let results = db.batch(statements).await?;
    Ok(super::rows::<CountRow>(&results, n - 1)?.first().is_some_and(|r| r.n == 1))
}

// --- reviews -----------------------------------------------------------------------------------

/// A buyer's review of an item.
#[derive(Deserialize)]
pub struct ReviewRow {
    pub id: String,
    pub item_id: String,
    pub rating: i64,
    pub title: String,
    pub review_text: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const REVIEW_COLUMNS: &str = "id, item_id, rating, title, review_text, created_at, updated_at";

/// Recounts the rating of item `?1` from its reviews, when `guard` (more of the WHERE) holds:
/// in the batch of every change to its reviews, so the counts are exact whatever runs at once.
fn recount_rating(guard: &str) -> String {
    format!(
        "UPDATE marketplace_items SET
             rating_sum = (SELECT COALESCE(SUM(rating), 0) FROM marketplace_reviews WHERE item_id = ?1),
             review_count = (SELECT COUNT(*) FROM marketplace_reviews WHERE item_id = ?1)
         WHERE id = ?1 {guard}"
    )
}

const BOUGHT: &str = "EXISTS (SELECT 1 FROM marketplace_orders o WHERE o.item_id = ?1 AND o.buyer_id = ?2 AND o.status = 'completed')";

/// Writes the buyer's review of an item (replacing theirs, if any) and recounts the item's rating,
/// in one batch, if the buyer's order of the item is completed then. The review, and whether
/// this call created it; `None` when the buyer has no completed order of the item.
pub async fn review(db: &Db, id: &str, item_id: &str, buyer_id: &str, r: &ReviewFields, now: Timestamp) -> Result<Option<(ReviewRow, bool)>> {
    let statements = vec![
        db.statement(
            "INSERT INTO marketplace_reviews (id, item_id, buyer_id, order_id, rating, title, review_text, created_at, updated_at)
             SELECT ?3, o.item_id, o.buyer_id, o.id, ?4, ?5, ?6, ?7, ?7 FROM marketplace_orders o
             WHERE o.item_id = ?1 AND o.buyer_id = ?2 AND o.status = 'completed'
             ON CONFLICT (item_id, buyer_id) DO UPDATE SET order_id = excluded.order_id, rating = excluded.rating,
                 title = excluded.title, review_text = excluded.review_text, updated_at = excluded.updated_at",
            &args![item_id, buyer_id, id, r.rating, &r.title, &r.review_text, now.unix()],
        )?,
        db.statement(&recount_rating(&format!("AND {BOUGHT}")), &args![item_id, buyer_id])?,
        db.statement(
            &format!("SELECT {REVIEW_COLUMNS} FROM marketplace_reviews WHERE item_id = ?1 AND buyer_id = ?2 AND {BOUGHT}"),
            &args![item_id, buyer_id],
        )?,
    ];
    let results = db.batch(statements).await?;
    Ok(super::rows::<ReviewRow>(&results, 2)?.pop().map(|r| {
        let created = r.id == id;
        (r, created)
    }))
}

/// An item's reviews, the latest written first, before the cursor (update time, id).
pub async fn reviews(db: &Db, item_id: &str, before: Option<&(i64, String)>, limit: u32) -> Result<Vec<ReviewRow>> {
    let (at, id) = before.map_or((None, None), |(t, i)| (Some(*t), Some(i.as_str())));
    let sql = format!(
        "SELECT {REVIEW_COLUMNS} FROM marketplace_reviews
         WHERE item_id = ?1 AND (?2 IS NULL OR updated_at < ?2 OR (updated_at = ?2 AND id < ?3))
         ORDER BY updated_at DESC, id DESC LIMIT ?4"
    );
    db.all(&sql, &args![item_id, at, id, limit]).await
}

// --- the seller's licenses ---------------------------------------------------------------------

/// A license of one of the seller's items, with its active instances.
#[derive(Deserialize)]
pub struct SellerLicenseRow {
    pub id: String,
    pub order_id: String,
    pub buyer_id: String,
    pub license_key: String,
    pub status: String,
    pub activation_limit: Option<i64>,
    pub active: i64,
    /// JSON array of `{id, instance_name, created_at}`, oldest first, at most 100 (`active` is
    /// the exact count).
    pub instances: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An active instance in `SellerLicenseRow::instances`.
#[derive(Deserialize)]
pub struct InstanceRow {
    pub id: String,
    pub instance_name: String,
    pub created_at: i64,
}

impl SellerLicenseRow {
    pub fn status(&self) -> Result<LicenseStatus> {
        LicenseStatus::parse(&self.status).ok_or_else(|| Error::corrupt("marketplace_licenses", &self.id, "status", &self.status))
    }

    pub fn instances(&self) -> Result<Vec<InstanceRow>> {
        serde_json::from_str(&self.instances).map_err(|_| Error::corrupt("marketplace_licenses", &self.id, "instances", &self.instances))
    }
}

const SELLER_LICENSE_SELECT: &str = "SELECT l.id, l.order_id, l.buyer_id, l.license_key, l.status, l.activation_limit, l.created_at, l.updated_at,
        (SELECT COUNT(*) FROM marketplace_activations a WHERE a.license_id = l.id AND a.deactivated_at IS NULL) AS active,
        (SELECT json_group_array(json_object('id', a.id, 'instance_name', a.instance_name, 'created_at', a.created_at))
         FROM (SELECT id, instance_name, created_at FROM marketplace_activations
               WHERE license_id = l.id AND deactivated_at IS NULL ORDER BY created_at, id LIMIT 100) a) AS instances
    FROM marketplace_licenses l";

/// The licenses of an item, newest first, before the cursor (creation time, id).
pub async fn item_licenses(db: &Db, item_id: &str, before: Option<&(i64, String)>, limit: u32) -> Result<Vec<SellerLicenseRow>> {
    let (at, id) = before.map_or((None, None), |(t, i)| (Some(*t), Some(i.as_str())));
    let sql = format!(
        "{SELLER_LICENSE_SELECT} WHERE l.item_id = ?1 AND (?2 IS NULL OR l.created_at < ?2 OR (l.created_at = ?2 AND l.id < ?3))
         ORDER BY l.created_at DESC, l.id DESC LIMIT ?4"
    );
    db.all(&sql, &args![item_id, at, id, limit]).await
}

/// A license of one of the seller's items (anyone else's → `None`).
pub async fn seller_license(db: &Db, seller_id: &str, license_id: &str) -> Result<Option<SellerLicenseRow>> {
    let sql = format!(
        "{SELLER_LICENSE_SELECT} WHERE l.id = ?1 AND l.item_id IN (SELECT id FROM marketplace_items WHERE seller_id = ?2)"
    );
    db.first(&sql, &args![license_id, seller_id]).await
}

/// Moves a license from `from` to `to` if it is still `from`; whether it did.
pub async fn set_license_status(db: &Db, license_id: &str, from: LicenseStatus, to: LicenseStatus, now: Timestamp) -> Result<bool> {
    let sql = "UPDATE marketplace_licenses SET status = ?3, updated_at = ?4 WHERE id = ?1 AND status = ?2";
    Ok(db.run(sql, &args![license_id, from.as_str(), to.as_str(), now.unix()]).await? == 1)
}

// --- the seller's sales ------------------------------------------------------------------------

/// How `sales` groups a seller's orders.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SalesBy {
    Total,
    Item,
    Month,
}

/// A seller's completed and refunded orders, summed: `gross = refunded + fees + net`.
#[derive(Deserialize)]
pub struct SalesRow {
    /// The item id or the month `YYYY-MM`; `None` for the total.
    pub key: Option<String>,
    pub title: Option<String>,
    pub sales: i64,
    pub refunds: i64,
    pub gross_cents: i64,
    pub refunded_cents: i64,
    pub fee_cents: i64,
    pub net_cents: i64,
}

/// The seller's orders completed in `[from, to)` (a refunded order counts where its sale does),
/// summed by `by`: items by net revenue, months newest first; at most `limit` groups.
pub async fn sales(db: &Db, seller_id: &str, from: Timestamp, to: Timestamp, by: SalesBy, limit: u32) -> Result<Vec<SalesRow>> {
    let (key, title, group) = match by {
        SalesBy::Total => ("NULL", "NULL", ""),
        SalesBy::Item => (
            "o.item_id",
            "(SELECT title FROM marketplace_items WHERE id = o.item_id)",
            "GROUP BY o.item_id ORDER BY net_cents DESC, gross_cents DESC, o.item_id",
        ),
        SalesBy::Month => ("strftime('%Y-%m', o.completed_at, 'unixepoch')", "NULL", "GROUP BY 1 ORDER BY 1 DESC"),
    };
    let sql = format!(
        "SELECT {key} AS key, {title} AS title,
             COUNT(CASE WHEN o.status = 'completed' THEN 1 END) AS sales,
             COUNT(CASE WHEN o.status = 'refunded' THEN 1 END) AS refunds,
             COALESCE(SUM(o.price_cents), 0) AS gross_cents,
             COALESCE(SUM(CASE WHEN o.status = 'refunded' THEN o.price_cents END), 0) AS refunded_cents,
             COALESCE(SUM(CASE WHEN o.status = 'completed' THEN o.fee_cents END), 0) AS fee_cents,
             COALESCE(SUM(CASE WHEN o.status = 'completed' THEN o.seller_cents END), 0) AS net_cents
         FROM marketplace_orders o
         WHERE o.seller_id = ?1 AND o.status IN ('completed', 'refunded') AND o.completed_at >= ?2 AND o.completed_at < ?3
         {group} LIMIT ?4"
    );
    db.all(&sql, &args![seller_id, from.unix(), to.unix(), limit]).await
}
