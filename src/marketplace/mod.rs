//! Marketplace: sellers list digital products (fingerprint databases, datasets, models,
//! plugins), upload each version's file to R2, and publish; anyone browses and searches the
//! catalogue, without a token.
//!
//! The rules are `domain::marketplace`; the SQL is `store::marketplace`; files are `blobs`.

pub mod orders;
pub mod reviews;
pub mod seller;

use crate::blobs;
use crate::domain::marketplace::{self as rules, Category, File, Item, ItemFields, ItemStatus, Sort, Version};
use crate::domain::money::MAX_CENTS;
use crate::domain::time::Timestamp;
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::ids::new_id;
use crate::store::marketplace::{self as store, Search};
use crate::store::Db;
use serde::{Deserialize, Serialize};

/// A listing as anyone sees it.
#[derive(Serialize)]
struct ItemView {
    id: String,
    seller_id: String,
    title: String,
    description: String,
    category: Category,
    tags: Vec<String>,
    price_cents: i64,
    currency: String,
    license_terms: String,
    activation_limit: Option<i64>,
    status: ItemStatus,
    sales: i64,
    average_rating: Option<f64>,
    review_count: i64,
    published_at: Option<Timestamp>,
    /// Only on the seller's and admins' views.
    #[serde(skip_serializing_if = "Option::is_none")]
    seller: Option<SellerFields>,
}

/// What only the seller (and admins) see of a listing.
#[derive(Serialize)]
struct SellerFields {
    /// The platform's fee on a sale of this item, in basis points.
    fee_bps: u32,
    /// The item's version for `If-Match` (also its `ETag`).
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// In the seller's list: the seller's part of the item's completed (unrefunded) orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    revenue_cents: Option<i64>,
    /// In the seller's list: downloads through all of the item's download links.
    #[serde(skip_serializing_if = "Option::is_none")]
    downloads: Option<i64>,
}

fn view(item: Item, seller: Option<u32>) -> ItemView {
    ItemView {
        average_rating: rules::average_rating(item.rating_sum, item.review_count),
        seller: seller.map(|default_fee| SellerFields {
            fee_bps: item.fee_bps_or(default_fee),
            version: item.version,
            created_at: item.created_at,
            updated_at: item.updated_at,
            revenue_cents: None,
            downloads: None,
        }),
        id: item.id,
        seller_id: item.seller_id,
        title: item.title,
        description: item.description,
        category: item.category,
        tags: item.tags,
        price_cents: item.price_cents,
        currency: item.currency,
        license_terms: item.license_terms,
        activation_limit: item.activation_limit,
        status: item.status,
        sales: item.sales,
        review_count: item.review_count,
        published_at: item.published_at,
    }
}

/// The seller's view of their item, with its version as `ETag`.
fn seller_reply(ctx: &Ctx, status: u16, item: Item) -> ApiResult {
    let etag = etag(item.version);
    Ok(Reply::json(status, &view(item, Some(ctx.config()?.marketplace_fee_bps)))?.with_header("ETag", etag))
}

fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

fn checked(f: &ItemFields, creating: bool, currency: &str) -> ApiResult<Option<Vec<String>>> {
    rules::check_item(f, creating, currency).map_err(|(field, why)| ApiError::validation(field, format!("{field} {why}")))
}

/// `POST /marketplace/items`: any active user lists a draft and so becomes a seller.
pub async fn create(ctx: &Ctx) -> ApiResult {
    let fields: ItemFields = ctx.json()?;
    if fields.status.is_some() {
        return Err(ApiError::validation("status", "status: a new item is a draft; publish it with PATCH once its file is uploaded"));
    }
    let currency = ctx.config()?.billing_currency.clone();
    let tags = checked(&fields, true, &currency)?.unwrap_or_default();
    let item = Item::draft(new_id(), ctx.user()?.id.clone(), fields, tags, &currency, ctx.now);
    store::insert(&ctx.db()?, &item).await?;
    seller_reply(ctx, 201, item)
}

/// `PATCH /marketplace/items/{id}` (the seller): fields and/or status. With `If-Match` (the
/// `ETag` read), it applies only to that version of the item (412 otherwise): no edit undoes
/// another unseen. Without, concurrent edits are applied one after the other.
pub async fn update(ctx: &Ctx) -> ApiResult {
    let fields: ItemFields = ctx.json()?;
    let currency = ctx.config()?.billing_currency.clone();
    let tags = checked(&fields, false, &currency)?;
    let user = ctx.user()?;
    edit(ctx, |item, has_file| {
        if item.seller_id != user.id {
            return Err(not_found());
        }
        item.apply(fields.clone(), tags.clone());
        if let Some(status) = fields.status {
            item.set_status(status, has_file, ctx.now)?;
        }
        Ok(())
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminPatchBody {
    fee_bps: Option<i64>,
    /// `true`: back to MARKETPLACE_FEE_BPS.
    default_fee: Option<bool>,
    status: Option<ItemStatus>,
}

/// `PATCH /admin/marketplace/items/{id}`: an item's fee rate (`fee_bps`, or `default_fee`:
/// MARKETPLACE_FEE_BPS again), or its status (an admin may archive any listing).
pub async fn admin_update(ctx: &Ctx) -> ApiResult {
    let body: AdminPatchBody = ctx.json()?;
    let fee = match (body.fee_bps, body.default_fee) {
        (Some(_), Some(true)) => return Err(ApiError::validation("default_fee", "Give fee_bps or default_fee, not both.")),
        (Some(bps), _) => Some(Some(rules::fee_rate(bps).map_err(|why| ApiError::validation("fee_bps", why))?)),
        (None, Some(true)) => Some(None),
        (None, _) => None,
    };
    if fee.is_none() && body.status.is_none() {
        return Err(ApiError::validation("body", "Give fee_bps and/or status."));
    }
    // An admin takes a listing down; publishing or withdrawing it stays the seller's.
    if body.status.is_some_and(|s| s != ItemStatus::Archived) {
        return Err(ApiError::validation("status", "status: an admin may only archive an item"));
    }
    edit(ctx, |item, has_file| {
        if let Some(fee) = fee {
            item.fee_bps = fee;
        }
        if let Some(status) = body.status {
            item.set_status(status, has_file, ctx.now)?;
        }
        Ok(())
    })
    .await
}

/// Attempts of an edit racing others: each round one of the racers lands, so ten edits at once
/// all land.
const EDIT_ATTEMPTS: usize = 10;

/// Reads the item, applies `change` and writes it if the item is still as read (up to
/// `EDIT_ATTEMPTS` times); with `If-Match`, once, at the version the client read.
async fn edit(ctx: &Ctx, change: impl Fn(&mut Item, bool) -> ApiResult<()>) -> ApiResult {
    let db = ctx.db()?;
    let id = ctx.param("id")?;
    let expected = ctx.if_match()?;
    for _ in 0..EDIT_ATTEMPTS {
        let current = store::find(&db, id).await?.ok_or_else(not_found)?;
        let mut next = current.clone();
        let has_file = has_file(&db, id).await?;
        // (The change first: another seller's item is 404 whatever the If-Match says.)
        let changed = change(&mut next, has_file);
        if let Err(e) = &changed {
            if e.status == 404 {
                return Err(not_found());
            }
        }
        if expected.is_some_and(|v| v != current.version) {
            return Err(ApiError::precondition_failed("item"));
        }
        changed?;
        next.version = current.version + 1;
        next.updated_at = ctx.now;
        if let Some(updated) = store::update(&db, &next).await? {
            return seller_reply(ctx, 200, updated);
        }
        if expected.is_some() {
            return Err(ApiError::precondition_failed("item"));
        }
    }
    Err(ApiError::contention("concurrent_update", "The item changed meanwhile; retry."))
}

async fn has_file(db: &Db, item_id: &str) -> ApiResult<bool> {
    Ok(store::versions(db, item_id).await?.iter().any(|v| v.file.is_some()))
}

fn not_found() -> ApiError {
    ApiError::not_found("No such item.")
}

/// `GET /marketplace/items/{id}` (no token): a published or archived item, with its latest
/// version. Drafts are their seller's only (`GET /marketplace/seller/items`).
pub async fn get(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    let item = store::find(&db, ctx.param("id")?).await?.filter(Item::is_public).ok_or_else(not_found)?;
    let versions = store::versions(&db, &item.id).await?;
    let latest = latest_of(&versions).map(|v| VersionView { is_latest: true, ..VersionView::from(v) });
    let mut value = serde_json::to_value(view(item, None)).map_err(ApiError::internal)?;
    value["latest_version"] = serde_json::to_value(latest).map_err(ApiError::internal)?;
    Reply::ok(&value)
}

/// `GET /marketplace/items?q=&category=&tag=&min_price=&max_price=&sort=` (no token):
/// published items, `q` searched in titles, tags and descriptions (SQLite FTS5, ranked by
/// relevance by default); the cursor is the number of results already shown.
pub async fn search(ctx: &Ctx) -> ApiResult {
    let q = ctx.query("q").unwrap_or("");
    if q.chars().count() > 200 {
        return Err(ApiError::validation("q", "q must be at most 200 characters"));
    }
    let fts = rules::fts_query(q);
    if fts.is_none() && !q.trim().is_empty() {
        // Nothing searchable in it (only punctuation, say): nothing matches.
        ctx.page::<i64>()?;
        return Reply::ok(&Page::<ItemView> { items: Vec::new(), next_cursor: None });
    }
    let tag = match ctx.query("tag") {
        Some(tag) => Some(
            rules::normalize_tags(&[tag.to_owned()])
                .ok()
                .and_then(|t| t.into_iter().next())
                .ok_or_else(|| ApiError::validation("tag", "tag must be 1–32 ASCII letters, digits, spaces, _ or -"))?,
        ),
        None => None,
    };
    let price = |name: &'static str| match ctx.query(name) {
        None => Ok(None),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (0..=MAX_CENTS).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::validation(name, format!("{name} must be 0–{MAX_CENTS} cents"))),
        },
    };
    let page = ctx.page::<i64>()?;
    let offset = page.after.unwrap_or(0);
    if offset > rules::MAX_SEARCH_OFFSET {
        return Err(ApiError::validation("cursor", format!("results page through at most {} items; narrow the search", rules::MAX_SEARCH_OFFSET)));
    }
    let search = Search {
        fts: fts.as_deref(),
        category: ctx.query_named("category")?,
        tag: tag.as_deref(),
        min_price: price("min_price")?,
        max_price: price("max_price")?,
        sort: ctx.query_named("sort")?.unwrap_or(Sort::Relevance),
        offset,
        limit: page.fetch_limit(),
    };
    let rows = store::search(&ctx.db()?, &search).await?;
    let numbered: Vec<(i64, Item)> = rows.into_iter().enumerate().map(|(i, item)| (offset + i as i64 + 1, item)).collect();
    Reply::ok(&Page::from_rows(numbered, page.limit, |(n, _)| *n).map(|(_, item)| view(item, None)))
}

/// `GET /marketplace/seller/items`: the caller's items, drafts included, newest first.
pub async fn seller_items(ctx: &Ctx) -> ApiResult {
    let page = ctx.page::<i64>()?;
    let rows = store::seller_items(&ctx.db()?, &ctx.user()?.id, page.after, page.fetch_limit()).await?;
    let fee = ctx.config()?.marketplace_fee_bps;
    Reply::ok(&Page::from_rows(rows, page.limit, |row| row.seq).map(|row| {
        let mut view = view(row.item, Some(fee));
        if let Some(seller) = &mut view.seller {
            seller.revenue_cents = Some(row.revenue_cents);
            seller.downloads = Some(row.downloads);
        }
        view
    }))
}

// --- versions and files ------------------------------------------------------------------------

#[derive(Serialize)]
struct VersionView {
    id: String,
    version_number: String,
    release_notes: String,
    /// Whether buyers get this version by default (the highest with a file, stable first).
    is_latest: bool,
    /// `null` until its file is uploaded.
    file: Option<FileView>,
    created_at: Timestamp,
}

#[derive(Serialize)]
struct FileView {
    size: i64,
    sha256: String,
    content_type: String,
    uploaded_at: Timestamp,
}

impl From<&Version> for VersionView {
    fn from(v: &Version) -> Self {
        VersionView {
            id: v.id.clone(),
            version_number: v.version_number.clone(),
            release_notes: v.release_notes.clone(),
            is_latest: false,
            file: v.file.as_ref().map(|f| FileView {
                size: f.size,
                sha256: f.sha256.clone(),
                content_type: f.content_type.clone(),
                uploaded_at: f.uploaded_at,
            }),
            created_at: v.created_at,
        }
    }
}

/// The version buyers get by default: the highest with a file (`rules::latest`).
fn latest_of(versions: &[Version]) -> Option<&Version> {
    let number = rules::latest(versions.iter().filter(|v| v.file.is_some()).map(|v| v.version_number.as_str()))?;
    versions.iter().find(|v| v.version_number == number)
}

fn versions_view(versions: &[Version], with_pending: bool) -> Vec<VersionView> {
    let latest = latest_of(versions).map(|v| v.id.clone());
    let mut views: Vec<VersionView> = versions
        .iter()
        .filter(|v| with_pending || v.file.is_some())
        .map(|v| VersionView { is_latest: Some(&v.id) == latest.as_ref(), ..VersionView::from(v) })
        .collect();
    views.reverse();
    views
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionBody {
    version_number: String,
    #[serde(default)]
    release_notes: String,
}

/// The caller's item (404 for anyone else's).
async fn own_item(ctx: &Ctx, db: &Db) -> ApiResult<Item> {
    let item = store::find(db, ctx.param("id")?).await?.ok_or_else(not_found)?;
    if item.seller_id != ctx.user()?.id {
        return Err(not_found());
    }
    Ok(item)
}

/// `POST /marketplace/items/{id}/versions` (the seller): a new version, above every one so far;
/// its file is uploaded next (`PUT …/file?version=`).
pub async fn add_version(ctx: &Ctx) -> ApiResult {
    let body: VersionBody = ctx.json()?;
    if body.release_notes.chars().count() > rules::MAX_RELEASE_NOTES_CHARS {
        return Err(ApiError::validation("release_notes", format!("release_notes must be at most {} characters", rules::MAX_RELEASE_NOTES_CHARS)));
    }
    let db = ctx.db()?;
    let item = own_item(ctx, &db).await?;
    let version = create_version(ctx, &db, &item.id, Some(&body.version_number), body.release_notes).await?;
    Reply::created(&VersionView::from(&version))
}

/// Adds a version numbered `number` (or the next after the highest), checked against the
/// versions there are when it lands.
async fn create_version(ctx: &Ctx, db: &Db, item_id: &str, number: Option<&str>, release_notes: String) -> ApiResult<Version> {
    for _ in 0..3 {
        let versions = store::versions(db, item_id).await?;
        let existing: Vec<&str> = versions.iter().map(|v| v.version_number.as_str()).collect();
        let version_number = match number {
            Some(n) => rules::check_new_version(n, &existing).map_err(|why| ApiError::validation("version_number", format!("version_number {why}")))?,
            None => rules::next_version(&existing).map_err(|why| ApiError::validation("version", format!("version: the next version {why}")))?,
        };
        let version = Version {
            id: new_id(),
            item_id: item_id.to_owned(),
            version_number,
            release_notes: release_notes.clone(),
            file: None,
            created_at: ctx.now,
        };
        if store::add_version(db, &version, existing.len()).await? {
            return Ok(version);
        }
    }
    Err(ApiError::contention("concurrent_update", "Versions were added meanwhile; retry."))
}

/// `GET /marketplace/items/{id}/versions` (no token): the versions of a public item with a file,
/// newest first.
pub async fn list_versions(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    let item = store::find(&db, ctx.param("id")?).await?.filter(Item::is_public).ok_or_else(not_found)?;
    let versions = store::versions(&db, &item.id).await?;
    Reply::ok(&serde_json::json!({ "items": versions_view(&versions, false) }))
}

/// `PUT /marketplace/items/{id}/file[?version=]` (the seller, raw body): the file of a version,
/// streamed to R2 with its SHA-256. It goes to the version named, else the newest version still
/// without a file, else a new version after the highest. A version's file never changes.
pub async fn upload(ctx: &Ctx) -> ApiResult {
    let config = ctx.config()?;
    let content_type = ctx.header("Content-Type").unwrap_or_default();
    let content_type = rules::file_type(&content_type).ok_or_else(|| {
        ApiError::new(415, "unsupported_media_type", format!("Content-Type must be one of {}", rules::FILE_TYPES.join(", ")))
    })?;
    let length = ctx
        .header("Content-Length")
        .and_then(|l| l.trim().parse::<u64>().ok())
        .ok_or_else(|| ApiError::new(411, "length_required", "Send the file with a Content-Length."))?;
    if length > config.marketplace_max_file_bytes {
        return Err(ApiError::payload_too_large(config.marketplace_max_file_bytes as usize));
    }
    if length == 0 {
        return Err(ApiError::validation("body", "The file is empty."));
    }
    let db = ctx.db()?;
    let item = own_item(ctx, &db).await?;
    let versions = store::versions(&db, &item.id).await?;
    let version = match ctx.query("version") {
        Some(number) => {
            let v = versions.iter().find(|v| v.version_number == number).cloned();
            v.ok_or_else(|| ApiError::new(404, "not_found", "No such version of this item."))?
        }
        None => match versions.iter().rev().find(|v| v.file.is_none()) {
            Some(pending) => pending.clone(),
            None => create_version(ctx, &db, &item.id, None, String::new()).await?,
        },
    };
    if version.file.is_some() {
        return Err(version_has_file());
    }
    let body = ctx.body_stream().ok_or_else(|| ApiError::validation("body", "The file is empty."))?;
    let key = format!("items/{}/{}/{}", item.id, version.id, new_id());
    let stored = blobs::put(&ctx.env, ctx.object_meter(), &key, body, length, content_type).await.map_err(|e| match e {
        blobs::Error::Incomplete(why) => ApiError::new(400, "upload_incomplete", format!("The upload ended early ({why}); send it again.")),
        e => ApiError::internal(e),
    })?;
    let file = File {
        key: key.clone(),
        size: stored.size as i64,
        sha256: stored.sha256,
        content_type: content_type.to_owned(),
        uploaded_at: ctx.now,
    };
    let recorded = store::set_file(&db, &version.id, &file).await;
    if !matches!(recorded, Ok(true)) {
        // Not referenced (another upload of this version landed first, or D1 failed): remove
        // it. A failed removal leaves an orphan object, logged, and changes no answer.
        if let Err(e) = blobs::delete(&ctx.env, ctx.object_meter(), &key).await {
            crate::log::log("error", &serde_json::json!({"request_id": ctx.request_id, "orphan_r2_object": key, "error": e.to_string()}));
        }
        recorded?;
        return Err(version_has_file());
    }
    let versions = store::versions(&db, &item.id).await?;
    let views = versions_view(&versions, true);
    let uploaded = views.into_iter().find(|v| v.id == version.id).ok_or_else(|| ApiError::internal("uploaded version not found"))?;
    Reply::created(&uploaded)
}

fn version_has_file() -> ApiError {
    ApiError::conflict("version_has_file", "This version has its file; create a new version for a new file.")
}
