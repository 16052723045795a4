//! The Vakt collector: ingests samples, keeps check state, opens and resolves incidents, and
//! exports what it knows as an HTTP API and Prometheus metrics.
//!
//! The decision core (`state`, `incident`) is pure: data and time in, decisions out. The store
//! and the HTTP layer are the edges.

pub mod access;
pub mod admission;
pub mod agents;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod check_series;
pub mod evaluator;
pub mod front;
pub mod incident;
pub mod ingest;
pub mod latency;
pub mod maintenance;
pub mod metrics;
pub mod notify;
pub mod pages;
pub mod priority;
pub mod quickstart;
pub mod ratelimit;
pub mod report;
pub mod server;
pub mod service_hours;
pub mod slo;
pub mod slo_eval;
pub mod state;
pub mod store;
pub mod time;
pub mod tls;
pub mod views;
pub mod web;
