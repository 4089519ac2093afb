//! SoundHash monetization edge: one Cloudflare Worker.
//!
//! Entry points only: `fetch` hands each request to `http::serve` with the routing table of
//! `routes` (the composition root), `scheduled` runs the cron `jobs`; the Durable Object classes
//! live in `objects` (exported by their macro). Dependencies point one way:
//! `lib → (routes, jobs) → programs (users, affiliates, …) → http → (store, objects) →
//! (config, log, ids, timing) → domain`; `domain` depends on nothing. `layers` (a native test) checks it.

pub mod affiliates;
pub mod attributions;
pub mod blobs;
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
pub mod marketplace;
pub mod objects;
pub mod payouts;
pub mod referrals;
pub mod resellers;
pub mod revenue;
pub mod rewards;
pub mod routes;
pub mod store;
pub mod timing;
pub mod users;

use worker::{event, web_sys, Context, Env, ScheduleContext, ScheduledEvent};

#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
    http::serve(req, env, ctx, routes::router()).await.map_err(worker::Error::from)
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    jobs::run(&event.cron(), &env).await;
}
