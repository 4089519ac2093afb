//! Durable Object classes (counters, leaderboards) and the typed clients the programs call them
//! through.

pub mod leaderboard;
pub mod link_clicks;

use crate::http::ApiError;
use worker::{web_sys, Env, Method, Request, Response};

/// Calls the object `name` of namespace `binding`; anything but a 200 is an internal error.
async fn call(env: &Env, binding: &str, name: &str, method: Method, path: &str, body: Option<String>) -> Result<Response, ApiError> {
    let stub = env.durable_object(binding)?.id_from_name(name)?.get_stub()?;
    // Built with web_sys directly: worker's RequestInit drags in the whole `cf` property model.
    let init = web_sys::RequestInit::new();
    init.set_method(method.as_ref());
    if let Some(body) = body {
        init.set_body(&body.into());
    }
    let request = web_sys::Request::new_with_str_and_init(&format!("https://{binding}{path}"), &init)
        .map_err(|e| ApiError::internal(format!("{binding} request: {e:?}")))?;
    let mut response = stub.fetch_with_request(Request::from(request)).await?;
    if response.status_code() != 200 {
        let text = response.text().await.unwrap_or_default();
        return Err(ApiError::internal(format!("{binding} {name} {path} answered {}: {text}", response.status_code())));
    }
    Ok(response)
}
