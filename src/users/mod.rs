//! Users: provisioned on first authenticated request; admins manage flags.

use crate::domain::time::Timestamp;
use crate::http::idempotency::{self, KeyPolicy};
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::store::users as store;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct User {
    pub id: String,
    pub is_admin: bool,
    pub is_active: bool,
    pub created_at: Timestamp,
}

/// `GET /me`
pub async fn me(ctx: &Ctx) -> ApiResult {
    Reply::ok(ctx.user()?)
}

/// `GET /admin/users?limit=&cursor=` in creation order.
pub async fn admin_list(ctx: &Ctx) -> ApiResult {
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::list(&ctx.db()?, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |u| (u.created_at.unix(), u.id.clone())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagsPatch {
    is_admin: Option<bool>,
    is_active: Option<bool>,
}

/// `PATCH /admin/users/{id}` with `{"is_admin"?, "is_active"?}`; accepts `Idempotency-Key`.
pub async fn admin_update(ctx: &Ctx) -> ApiResult {
    idempotency::run(ctx, KeyPolicy::Optional, || async {
        let patch: FlagsPatch = ctx.json()?;
        if patch.is_admin.is_none() && patch.is_active.is_none() {
            return Err(ApiError::validation("body", "Give is_admin and/or is_active."));
        }
        let id = ctx.param("id")?;
        if id == ctx.user()?.id {
            return Err(ApiError::conflict(
                "self_modification",
                "Administrators cannot change their own flags; ask another administrator.",
            ));
        }
        let user = store::update_flags(&ctx.db()?, id, patch.is_admin, patch.is_active, ctx.now)
            .await?
            .ok_or_else(|| ApiError::not_found("No such user."))?;
        Reply::ok(&user)
    })
    .await
}
