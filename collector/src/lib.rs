//! The Vakt collector: ingests samples, keeps check state, opens and resolves incidents, and
//! exports what it knows as an HTTP API and Prometheus metrics.
//!
//! The decision core (`state`, `incident`) is pure: data and time in, decisions out. The store
//! and the HTTP layer are the edges.

pub mod app;
pub mod auth;
pub mod check_series;
pub mod cluster;
pub mod core;
pub mod evaluate;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod quickstart;
pub mod remote_write;
pub mod server;
pub mod store;
