//! Notifications: the payload each kind of receiver documents, and the worker that delivers the
//! durable outbox. Which receivers an event goes to is decided in `core::routing`.
//!
//! An incident event and its notifications are written in one transaction (the outbox); the
//! worker delivers them after `group_wait`, with exponential backoff, and records each outcome.
//! A notification held back (its incident is linked under a root cause, or its services are in
//! maintenance) is recorded as suppressed, never dropped.

pub mod paging;
pub mod payload;
pub mod receivers;
pub mod status_posts;
pub mod subscribers;
pub mod tickets;
pub mod worker;
