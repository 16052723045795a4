//! The decision core: pure functions of data and time, no I/O (no tokio, no sockets, no
//! database). The stores load what a decision needs and write what it returns; the evaluator,
//! the notifier and the HTTP layer call these functions with `now` as an argument.

pub mod admission;
pub mod audience;
pub mod batch;
pub mod catalog;
pub mod cause;
pub mod charts;
pub mod ct;
pub mod heartbeat;
pub mod html;
pub mod incident;
pub mod latency;
pub mod maintenance;
pub mod plan;
pub mod policies;
pub mod priority;
pub mod ratelimit;
pub mod report_schedule;
pub mod routing;
pub mod service_hours;
pub mod slo;
pub mod state;
pub mod status_post;
pub mod time;
