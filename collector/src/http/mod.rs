//! The HTTP layer, by audience: agents (`ingest`, assignments and announcements in `api`), people
//! (`api`: incidents, SLOs, reports, silences, maintenance), the public (`public`: status page
//! and badges), on-call engineers' pages (`oncall`, rendered by `views`, the fleet in `fleet`);
//! with access control (`access`), the connection front (`front`) and TLS (`tls`).

pub mod access;
pub mod api;
pub mod fleet;
pub mod front;
pub mod ingest;
pub mod oncall;
pub mod public;
pub mod tls;
pub mod views;
