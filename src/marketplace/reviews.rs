//! Reviews: a buyer whose order of an item is completed rates it (one review per buyer, a
//! second replaces the first); a refund removes it. The item's average and count are recounted
//! in the batch of every change, so they stay exact whatever runs at once.

use super::not_found;
use crate::domain::marketplace::{self as rules, Item, ReviewFields};
use crate::domain::time::Timestamp;
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::ids::new_id;
use crate::store::marketplace::{self as store, ReviewRow};
use serde::Serialize;

#[derive(Serialize)]
struct ReviewView {
    id: String,
    item_id: String,
    rating: i64,
    title: String,
    review_text: String,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<ReviewRow> for ReviewView {
    fn from(r: ReviewRow) -> Self {
        ReviewView {
            id: r.id,
            item_id: r.item_id,
            rating: r.rating,
            title: r.title,
            review_text: r.review_text,
            created_at: Timestamp::from_unix(r.created_at),
            updated_at: Timestamp::from_unix(r.updated_at),
        }
    }
}

/// `POST /marketplace/items/{id}/reviews`: the caller's review of an item they bought (201 when
/// new, 200 when it replaces theirs); 403 `purchase_required` without a completed order.
pub async fn write(ctx: &Ctx) -> ApiResult {
    let fields: ReviewFields = ctx.json()?;
    rules::check_review(&fields).map_err(|(field, why)| ApiError::validation(field, format!("{field} {why}")))?;
    let db = ctx.db()?;
    let item = store::find(&db, ctx.param("id")?).await?.filter(Item::is_public).ok_or_else(not_found)?;
    let written = store::review(&db, &new_id(), &item.id, &ctx.user()?.id, &fields, ctx.now).await?;
    let (row, created) = written.ok_or_else(|| {
        ApiError::new(403, "purchase_required", "Only a buyer with a completed, unrefunded order of this item may review it.")
    })?;
    Reply::json(if created { 201 } else { 200 }, &ReviewView::from(row))
}

/// `GET /marketplace/items/{id}/reviews` (no token): a public item's reviews, the latest
/// written first.
pub async fn list(ctx: &Ctx) -> ApiResult {
    let db = ctx.db()?;
    let item = store::find(&db, ctx.param("id")?).await?.filter(Item::is_public).ok_or_else(not_found)?;
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::reviews(&db, &item.id, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |r| (r.updated_at, r.id.clone())).map(ReviewView::from))
}
