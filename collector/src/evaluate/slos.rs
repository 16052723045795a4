//! Connects the SLO core to the store and the config: reads a service's periods, rollups and
//! maintenance for a time range, builds its [`Series`], and evaluates its SLOs.

use jiff::tz::TimeZone;
use vakt_config::slo::{Calendar, SloConfig, SloKind, SloMethod, UnknownPolicy};
use vakt_config::CollectorConfig;

use crate::core::maintenance::{excluded_for, occurrences_in};
use crate::core::slo::{build_series, BurnRule, Method, Series, Slo, Unknown, Verdict, Window};
use crate::store::{Store, StoreError};

/// The core's view of a configured SLO (with its service hours from `config`).
pub fn spec(config: &CollectorConfig, name: &str, c: &SloConfig) -> Slo {
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
        hours: c.service_hours.as_ref().and_then(|h| {
            let name = h.get_ref().as_str();
            config.service_hours.get(name).map(|cfg| crate::core::service_hours::Hours::from_config(name, cfg))
        }),
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
    Ok(build_series(from_ms, to_ms, &periods, &excluded, &[]))
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
    let mut excluded = if slo_cfg.exclude_maintenance {
        let created = store.maintenance(from_ms, to_ms)?;
        excluded_for(&occurrences_in(Some(config), &config.maintenance, &created, from_ms, to_ms), service)
    } else {
        Vec::new()
    };
    // Outside the service hours nothing counts: taken out like maintenance (build_series
    // takes the union; a report tells the two apart).
    if let Some(name) = &slo_cfg.service_hours {
        if let Some(h) = config.service_hours.get(name.get_ref().as_str()) {
            let hours = crate::core::service_hours::Hours::from_config(name.get_ref(), h);
            excluded.extend(hours.outside(from_ms, to_ms));
            excluded.sort_unstable();
        }
    }
    Ok(build_series(from_ms, to_ms, &periods, &excluded, &events))
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
    (crate::core::slo::floor_minute(start.min(now_ms - longest_rule)), now_ms)
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
    let slo = spec(config, name, c);
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

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_config::wire::{Batch, Sample};

    fn ms(t: &str) -> i64 {
        t.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    /// A business-hours SLO over the week of Monday 7 December 2026 in Oslo, weekdays
    /// 08:00–16:00 less the holiday on Wednesday the 9th: 4 days × 480 = 1,920 counted minutes.
    /// The check is down for 30 minutes on Monday at 09:00 (inside) and for 5 hours on Saturday
    /// (outside: neither counted nor budgeted). Achieved: 1 − 30 / 1,920 = 98.4375 %; the
    /// budget at 99 % is 19.2 minutes, so 30 minutes breach it.
    #[test]
    fn a_business_hours_slo_counts_exactly_the_calendars_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(dir.path()).unwrap();
        let text = "[agents.a]\ntoken_hash = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n\
                    [checks.web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:80\"\nagents = [\"a\"]\nfail_after = 1\nrecover_after = 1\n\
                    [services.shop]\nchecks = [\"web\"]\n\
                    [service_hours.business]\ntimezone = \"Europe/Oslo\"\nhours = \"08:00-16:00\"\nholidays = [\"2026-12-09\"]\n\
                    [slos.shop-business]\nservice = \"shop\"\nobjective = 99.0\nwindow = \"7d\"\nservice_hours = \"business\"\n";
        let config = CollectorConfig::parse(text, std::path::Path::new("collector.toml")).unwrap();
        let results = [
            ("2026-12-06T23:00:00Z", true),  // Monday 00:00 Oslo: up
            ("2026-12-07T08:00:00Z", false), // Monday 09:00: down
            ("2026-12-07T08:30:00Z", true),  // Monday 09:30: up
            ("2026-12-12T10:00:00Z", false), // Saturday 11:00: down, outside the hours
            ("2026-12-12T15:00:00Z", true),  // Saturday 16:00: up
        ];
        let samples = results
            .iter()
            .map(|(t, ok)| Sample {
                check: "web".into(),
                timestamp_ms: ms(t),
                success: *ok,
                degraded: false,
                latency_seconds: Some(0.01),
                values: Default::default(),
                error: None,
                perfdata: Vec::new(),
            })
            .collect();
        let batch = Batch { version: 1, agent: "a".into(), instance: None, sequence: 1, samples, agent_version: None };
        let mut policies = crate::core::policies::Policies::default();
        policies.flap.insert("web".into(), crate::core::state::Policy { fail_after: 1, recover_after: 1 });
        store.commit_batch(&batch, ms("2026-12-13T23:00:00Z"), &policies).unwrap();
        // No gaps: results vouch until the next (no interval configured in these policies).
        let (from, to) = (ms("2026-12-06T23:00:00Z"), ms("2026-12-13T23:00:00Z"));
        let c = &config.slos["shop-business"];
        let slo = spec(&config, "shop-business", c);
        let s = series(&store, &config, c, from, to).unwrap();
        let a = slo.assess(&s, from, to);
        assert_eq!(a.sli.valid, (1_920 * 60_000) as f64, "only the calendar's minutes are valid");
        assert_eq!(a.sli.bad, (30 * 60_000) as f64, "Saturday's outage is outside the hours");
        assert!((a.achieved.unwrap() - 0.984375).abs() < 1e-12, "{:?}", a.achieved);
        assert!((a.budget_allowed / 60_000.0 - 19.2).abs() < 1e-9);
        assert_eq!(a.status, crate::core::slo::Status::Breached);
    }
}
