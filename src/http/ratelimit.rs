//! Abuse throttling with the Workers Rate Limiting bindings (configured in wrangler.toml):
//! `RATE_LIMIT_USER` keyed by user id for authenticated requests, `RATE_LIMIT_IP` keyed by the
//! client IP for public routes and failed authentications. Over the limit → 429 with
//! `Retry-After`. The binding is approximate and per location, so it is for abuse only; exact
//! quotas use D1 constraints or Durable Objects.

use super::{ApiError, ApiResult, Ctx};
use crate::log::log;
use crate::domain::time::Timestamp;

/// The `period` of both bindings in wrangler.toml (the binding accepts 10 or 60).
pub const PERIOD_SECONDS: i64 = 60;

pub async fn by_user(ctx: &Ctx, user_id: &str) -> ApiResult<()> {
    check(ctx, "RATE_LIMIT_USER", format!("user:{user_id}")).await
}

pub async fn by_ip(ctx: &Ctx) -> ApiResult<()> {
    check(ctx, "RATE_LIMIT_IP", format!("ip:{}", ctx.client_ip())).await
}

async fn check(ctx: &Ctx, binding: &str, key: String) -> ApiResult<()> {
    // A missing or failing limiter must not take the API down: log it and let the request through.
    let outcome = match ctx.env.rate_limiter(binding) {
        Ok(limiter) => limiter.limit(key).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(o) if o.success => Ok(()),
        Ok(_) => Err(ApiError::rate_limited(retry_after(ctx.now))),
        Err(e) => {
            log("warn", &serde_json::json!({"request_id": ctx.request_id, "rate_limiter": binding, "error": e.to_string()}));
            Ok(())
        }
    }
}

/// Seconds until the current window ends (windows are aligned to multiples of the period).
pub fn retry_after(now: Timestamp) -> u32 {
    (PERIOD_SECONDS - now.unix().rem_euclid(PERIOD_SECONDS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_points_at_the_next_window() {
        assert_eq!(retry_after(Timestamp::from_unix(120)), 60);
        assert_eq!(retry_after(Timestamp::from_unix(121)), 59);
        assert_eq!(retry_after(Timestamp::from_unix(179)), 1);
    }
}
