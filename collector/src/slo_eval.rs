//! Connects the SLO core to the store and the config: reads a service's periods, rollups and
//! maintenance for a time range, builds its [`Series`], and evaluates its SLOs.

use jiff::tz::TimeZone;
use vakt_config::slo::{Calendar, SloConfig, SloKind, SloMethod, UnknownPolicy};
use vakt_config::CollectorConfig;

use crate::maintenance::{excluded_for, occurrences_in};
use crate::slo::{build_minutes, BurnRule, Method, Series, Slo, Unknown, Verdict, Window};
use crate::store::{Store, StoreError};

/// The core's view of a configured SLO.
pub fn spec(name: &str, c: &SloConfig) -> Slo {
    let tz = c.timezone.as_ref().and_then(|t| TimeZone::get(t.get_ref()).ok()).unwrap_or(TimeZone::UTC);
    let window = match (&c.window, c.calendar) {
        (Some(w), _) => Window::Rolling { ms: i64::try_from(w.get_ref().get().as_millis()).unwrap_or(i64::MAX) },
        (None, Some(Calendar::Quarter)) => Window::Calendar { months: 3, tz },
        (None, _) => Window::Calendar { months: 1, tz },
    };
    Slo {
        name: name.to_string(),
        method: match (c.kind, c.method) {
            (SloKind::Latency, _) | (_, SloMethod::Events) => Method::Events,
            (SloKind::Availability, SloMethod::Time) => Method::Time,
        },
        objective: *c.objective.get_ref() / 100.0,
        window,
        unknown: match c.unknown {
            UnknownPolicy::Exclude => Unknown::Exclude,
            UnknownPolicy::Good => Unknown::Good,
            UnknownPolicy::Bad => Unknown::Bad,
        },
        rules: c
            .burn_rules()
            .into_iter()
            .map(|r| BurnRule {
                severity: r.severity.get_ref().clone(),
                long_ms: i64::try_from(r.long.get().as_millis()).unwrap_or(i64::MAX),
                short_ms: i64::try_from(r.short.get().as_millis()).unwrap_or(i64::MAX),
                factor: r.factor,
            })
            .collect(),
    }
}

/// The checks of a service.
pub fn service_checks(config: &CollectorConfig, service: &str) -> Vec<String> {
    config.services.get(service).map(|s| s.checks.iter().map(|c| c.get_ref().clone()).collect()).unwrap_or_default()
}

/// A service's availability series over `[from_ms, to_ms)`, maintenance excluded.
pub fn service_series(
    store: &dyn Store,
    config: &CollectorConfig,
    service: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Series, StoreError> {
    let checks = service_checks(config, service);
    let periods = store.periods(&checks, from_ms, to_ms)?;
    let created = store.maintenance(from_ms, to_ms)?;
    let excluded = excluded_for(&occurrences_in(Some(config), &config.maintenance, &created, from_ms, to_ms), service);
    Ok(Series::new(from_ms, &build_minutes(from_ms, to_ms, &periods, &excluded, &[])))
}

/// The series of `slo_cfg`'s service over `[from_ms, to_ms)`.
pub fn series(
    store: &dyn Store,
    config: &CollectorConfig,
    slo_cfg: &SloConfig,
    from_ms: i64,
    to_ms: i64,
) -> Result<Series, StoreError> {
    let service = slo_cfg.service.get_ref();
    let checks = service_checks(config, service);
    let periods = store.periods(&checks, from_ms, to_ms)?;
    let threshold = slo_cfg.latency_threshold.as_ref().map(|t| t.get_ref().get().as_secs_f64());
    let events = store.minute_events(&checks, from_ms, to_ms, threshold)?;
    let excluded = if slo_cfg.exclude_maintenance {
        let created = store.maintenance(from_ms, to_ms)?;
        excluded_for(&occurrences_in(Some(config), &config.maintenance, &created, from_ms, to_ms), service)
    } else {
        Vec::new()
    };
    Ok(Series::new(from_ms, &build_minutes(from_ms, to_ms, &periods, &excluded, &events)))
}

/// Burn-rate windows published whether or not a rule uses them (Sloth's set).
pub const PUBLISHED_WINDOWS_MS: &[i64] =
    &[300_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 86_400_000, 259_200_000];

/// The range a verdict at `now_ms` needs: the SLO window, every rule's windows and the
/// published ones.
pub fn needed_range(slo: &Slo, now_ms: i64) -> (i64, i64) {
    let (start, _) = slo.window_at(now_ms);
    let longest_rule = slo
        .rules
        .iter()
        .map(|r| r.long_ms.max(r.short_ms))
        .chain(PUBLISHED_WINDOWS_MS.iter().copied())
        .max()
        .unwrap_or(0);
    // Up to now: a calendar window's future holds nothing yet.
    (crate::slo::floor_minute(start.min(now_ms - longest_rule)), now_ms)
}

/// One SLO at `now_ms`: its verdict, and its burn rate over each published window.
pub struct Evaluation {
    pub name: String,
    pub verdict: Verdict,
    pub published_burn_rates: Vec<(i64, f64)>,
}

pub fn evaluate_one(
    store: &dyn Store,
    config: &CollectorConfig,
    name: &str,
    c: &SloConfig,
    now_ms: i64,
) -> Result<Evaluation, StoreError> {
    let slo = spec(name, c);
    let (from, to) = needed_range(&slo, now_ms);
    let series = series(store, config, c, from, to)?;
    let published_burn_rates =
        PUBLISHED_WINDOWS_MS.iter().map(|w| (*w, slo.burn_rate(&series, now_ms - w, now_ms))).collect();
    Ok(Evaluation { name: name.to_string(), verdict: slo.evaluate(&series, now_ms), published_burn_rates })
}

/// Every configured SLO at `now_ms`.
pub fn evaluate_all(store: &dyn Store, config: &CollectorConfig, now_ms: i64) -> Result<Vec<Evaluation>, StoreError> {
    config.slos.iter().map(|(name, c)| evaluate_one(store, config, name.as_str(), c, now_ms)).collect()
}

/// For a latency SLO: the latency at its objective's quantile (p99 for 99) over
/// `[from_ms, to_ms)`, from the per-minute histograms merged.
pub fn latency_quantile(
    store: &dyn Store,
    config: &CollectorConfig,
    c: &SloConfig,
    from_ms: i64,
    to_ms: i64,
) -> Result<Option<f64>, StoreError> {
    if c.kind != SloKind::Latency {
        return Ok(None);
    }
    let checks = service_checks(config, c.service.get_ref());
    let q = (*c.objective.get_ref() / 100.0).clamp(0.0, 1.0);
    Ok(store.merged_latency(&checks, from_ms, to_ms)?.map(|h| h.value_at_quantile(q) as f64 / 1e6))
}
