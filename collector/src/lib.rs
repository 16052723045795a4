//! The Vakt collector: ingests samples, keeps check state, opens and resolves incidents, and
//! exports what it knows as an HTTP API and Prometheus metrics.
//!
//! The decision core (`state`, `incident`) is pure: data and time in, decisions out. The store
//! and the HTTP layer are the edges.

pub mod access;
pub mod agents;
pub mod api;
pub mod app;
pub mod auth;
pub mod check_series;
pub mod core;
pub mod evaluate;
pub mod front;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod pages;
pub mod quickstart;
pub mod report;
pub mod server;
pub mod store;
pub mod tls;
pub mod views;
pub mod web;
