//! A service as a whole, now and over a window: its state from its checks and maintenance,
//! and its uptime. The status page, the badges and the evaluator's metrics read these.

use vakt_config::CollectorConfig;

use crate::core::slo::{Method, Slo, Unknown, Window};
use crate::core::state::Status;
use crate::store::{Store, StoreError};

const DAY_MS: i64 = 86_400_000;

/// A service's availability: time-based, unknown time excluded.
pub fn availability() -> Slo {
    Slo {
        name: String::new(),
        method: Method::Time,
        objective: 0.999,
        window: Window::Rolling { ms: DAY_MS },
        unknown: Unknown::Exclude,
        rules: Vec::new(),
        hours: None,
    }
}

/// Uptime of `service` over `[now - window, now)`.
pub fn uptime(
    store: &dyn Store,
    config: &CollectorConfig,
    service: &str,
    window_ms: i64,
    now_ms: i64,
) -> Result<Option<f64>, StoreError> {
    let from = now_ms - window_ms;
    let series = crate::evaluate::slos::service_series(store, config, service, from, now_ms)?;
    Ok(availability().assess(&series, from, now_ms).achieved)
}

/// The current state of a service from its checks and its maintenance.
pub fn service_state(
    store: &dyn Store,
    config: &CollectorConfig,
    service: &str,
    now_ms: i64,
) -> Result<&'static str, StoreError> {
    let checks = crate::evaluate::slos::service_checks(config, service);
    let states = store.check_states()?;
    let mine: Vec<_> = states.iter().filter(|(c, _)| checks.contains(c)).map(|(_, s)| s).collect();
    let created = store.maintenance(now_ms, now_ms + 1)?;
    let in_maintenance =
        crate::core::maintenance::occurrences_in(Some(config), &config.maintenance, &created, now_ms, now_ms + 1)
            .iter()
            .any(|o| o.covers(service));
    Ok(if mine.iter().any(|s| s.status == Status::Down) {
        if in_maintenance {
            "maintenance"
        } else {
            "down"
        }
    } else if in_maintenance {
        "maintenance"
    } else if mine.is_empty() || mine.iter().all(|s| s.status == Status::Unknown) {
        "unknown"
    } else if mine.iter().any(|s| s.degraded) {
        "degraded"
    } else {
        "operational"
    })
}
