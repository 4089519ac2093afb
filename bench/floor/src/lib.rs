//! The Rust floor of the bench: a constant 302 (the edge links' floor), and a constant JSON 200
//! under `/api/` (the floor of a read that needs no round trip), built with the `worker` crate
//! exactly as the service is built. Nothing else: no routing table, no D1, no logging.

use worker::{event, web_sys, Context, Env, Headers};

#[event(fetch)]
async fn fetch(req: web_sys::Request, _env: Env, _ctx: Context) -> worker::Result<web_sys::Response> {
    let headers = Headers::new();
    let init = web_sys::ResponseInit::new();
    init.set_headers(&headers.0);
    let api = req.url().split_once("://").and_then(|(_, rest)| rest.find("/api/").map(|_| ())).is_some();
    let response = if api {
        headers.set("Content-Type", "application/json")?;
        init.set_status(200);
        web_sys::Response::new_with_opt_str_and_init(Some(r#"{"ok":true}"#), &init)
    } else {
        headers.set("Location", "https://soundhash.io/")?;
        init.set_status(302);
        web_sys::Response::new_with_opt_str_and_init(None, &init)
    };
    response.map_err(worker::Error::from)
}
