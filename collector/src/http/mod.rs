//! The HTTP layer, by audience. `api`: the router and what routes share. Agents: `agents` (push,
//! assignments, local-check announcements) with `ingest` (reading and validating a push).
//! People: `incidents`, `slos` (SLOs and reports), `planned` (maintenance, silences),
//! `inventory` (checks, samples, agents), `cluster` (the nodes sharing a store). The public: `public` (status page, badges), `status_public` (posts, history, feed, subscribing). People: `status_posts` (writing posts). On-call
//! engineers' pages: `oncall` (forms) rendered by `views`, the fleet in `fleet`, `check_page`,
//! `service_page`, pictures in `charts` fed by `slo_charts`. Around them:
//! `access` (who may read and write what), `front` (connections) and `tls`.

pub mod access;
pub mod agents;
pub mod api;
pub mod check_page;
pub mod cluster;
pub mod fleet;
pub mod front;
pub mod incidents;
pub mod ingest;
pub mod inventory;
pub mod oncall;
pub mod ping;
pub mod planned;
pub mod public;
pub mod service_page;
pub mod slo_charts;
pub mod slos;
pub mod status_posts;
pub mod status_public;
pub mod tls;
pub mod views;
