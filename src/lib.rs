//! SoundHash monetization edge: one Cloudflare Worker.
//!
//! Entry points only. Dependencies point one way:
//! `lib.rs → http → programs (users, affiliates, …) → (domain, store, objects)`; `domain`
//! depends on nothing. The Durable Object classes live in `objects` (exported by their macro).

pub mod affiliates;
pub mod attributions;
pub mod campaigns;
pub mod config;
pub mod conversions;
pub mod domain;
pub mod http;
pub mod ids;
pub mod jobs;
#[cfg(test)]
mod layers;
pub mod links;
pub mod log;
pub mod objects;
pub mod payouts;
pub mod referrals;
pub mod rewards;
pub mod routes;
pub mod store;
pub mod users;

use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    Ok(http::serve(req, env, ctx, routes::router()).await)
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    jobs::run(&event.cron(), &env).await;
}
