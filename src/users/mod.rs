//! Users: provisioned on first authenticated request; admins manage flags.

use crate::domain::links;
use crate::domain::time::Timestamp;
use crate::domain::users::User;
use crate::http::idempotency::{self, KeyPolicy};
use crate::http::pagination::Page;
use crate::http::{ApiError, ApiResult, Ctx, Reply};
use crate::store::users as store;
use serde::{Deserialize, Serialize};

/// A user as the API shows them.
#[derive(Serialize)]
struct UserView {
    id: String,
    is_admin: bool,
    is_active: bool,
    created_at: Timestamp,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView { id: u.id, is_admin: u.is_admin, is_active: u.is_active, created_at: u.created_at }
    }
}

/// `GET /me`: the caller as authenticated.
pub async fn me(ctx: &Ctx) -> ApiResult {
    let me = ctx.user()?;
    Reply::ok(&UserView { id: me.id.clone(), is_admin: me.is_admin, is_active: me.is_active, created_at: me.created_at })
}

/// `GET /admin/users?limit=&cursor=` in creation order.
pub async fn admin_list(ctx: &Ctx) -> ApiResult {
    let page = ctx.page::<(i64, String)>()?;
    let rows = store::list(&ctx.db()?, page.after.as_ref(), page.fetch_limit()).await?;
    Reply::ok(&Page::from_rows(rows, page.limit, |u| (u.created_at.unix(), u.id.clone())).map(UserView::from))
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
        let db = ctx.db()?;
        let user = store::update_flags(&db, id, patch.is_admin, patch.is_active, ctx.now)
            .await?
            .ok_or_else(|| ApiError::not_found("No such user."))?;
        crate::http::principals::forget(&user.id);
        if patch.is_active.is_some() {
            forget_links(&db, id).await?;
        }
        Reply::ok(&UserView::from(user))
    })
    .await
}

/// A user's `/a/` and `/r/` links answer only while the user is active: this isolate forgets
/// what it cached about them at once (others within `LINK_CACHE_SECONDS`).
async fn forget_links(db: &crate::store::Db, user: &str) -> ApiResult<()> {
    if let Some(affiliate) = crate::store::affiliates::find_by_user(db, user).await? {
        crate::links::forget(&links::affiliate_link(&affiliate.code));
    }
    if let Some(code) = crate::store::referrals::code_of(db, user).await? {
        crate::links::forget(&links::referral_link(&code));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_is_the_api_shape() {
        let user = User { id: "u1".into(), is_admin: false, is_active: true, created_at: Timestamp::from_unix(1_800_000_000) };
        assert_eq!(
            serde_json::to_string(&UserView::from(user)).unwrap(),
            r#"{"id":"u1","is_admin":false,"is_active":true,"created_at":"2027-01-15T08:00:00Z"}"#
        );
    }
}
