//! Durable Object classes (counters) and the typed clients the programs call them through.

pub mod link_clicks;
