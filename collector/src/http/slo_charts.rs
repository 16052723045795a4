//! An SLO's pictures, read from the store and drawn by `charts`: the error budget over its window
//! (with the burn-rate alert thresholds), the service's availability per day, a latency SLO's
//! percentile per day. Shown on the SLA page and, the budget line, on the service page.

use crate::app::App;
use crate::core::charts::{self, BurnRule, Day};
use crate::core::slo::Verdict;
use crate::core::time::Shown;
use crate::store::StoreError;

const DAY_MS: i64 = 86_400_000;

/// An SLO's error budget over its window so far: the remaining share at 48 points, each
/// burn-rate alert's threshold as a slope from now, the rules written beneath. Empty for an SLO
/// no longer configured.
pub fn budget(app: &App, name: &str, v: &Verdict, t: &Shown) -> Result<String, StoreError> {
    let Some(cfg) = app.config.slos.get(name) else { return Ok(String::new()) };
    let spec = crate::evaluate::slos::spec(&app.config, name, cfg);
    let upto = v.window_end_ms.min(t.now_ms);
    let series = crate::evaluate::slos::series(app.store.as_ref(), &app.config, cfg, v.window_start_ms, upto)?;
    let points = spec.budget_left(&series, v.window_start_ms, upto, v.budget_allowed, 48);
    let window_ms = (v.window_end_ms - v.window_start_ms).max(1) as f64;
    let rules: Vec<BurnRule> = spec
        .rules
        .iter()
        .map(|r| BurnRule {
            severity: r.severity.clone(),
            factor: r.factor,
            text: format!(
                "{} alert: burn rate {}x over {} (spends {:.1}% of the budget in that time)",
                r.severity,
                r.factor,
                crate::core::time::human_span(r.long_ms),
                r.factor * r.long_ms as f64 / window_ms * 100.0
            ),
        })
        .collect();
    Ok(charts::budget(
        &format!("budget-{name}"),
        &points,
        (v.window_start_ms, v.window_end_ms),
        (&t.local(v.window_start_ms), &t.local(v.window_end_ms)),
        &rules,
    ))
}

/// The SLA page's pictures per SLO: its budget line, the service's availability per day for the
/// last 30 days, and for a latency SLO the percentile per day against the threshold.
pub fn sla_pictures(app: &App, verdicts: &[(String, Verdict)], t: &Shown) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    for (name, v) in verdicts {
        let Some(cfg) = app.config.slos.get(name.as_str()) else { continue };
        let spec = crate::evaluate::slos::spec(&app.config, name, cfg);
        let upto = v.window_end_ms.min(t.now_ms);
        let mut svg = budget(app, name, v, t)?;
        let days: Vec<Day> =
            crate::http::public::service_days(app.store.as_ref(), &app.config, cfg.service.get_ref(), t.now_ms, 30)?
                .0
                .into_iter()
                .map(|d| Day { label: d.date, good: d.uptime })
                .collect();
        let floor = (spec.objective.min(0.99) - 0.01).max(0.0);
        svg.push_str(&charts::days(&format!("days-{name}"), "Availability per day", &days, floor));
        // A latency SLO: its percentile per day (the last 30 of the window) against the bound.
        if let Some(threshold) = cfg.latency_threshold.as_ref().map(|d| d.get_ref().get().as_secs_f64()) {
            let checks = crate::evaluate::slos::service_checks(&app.config, cfg.service.get_ref());
            let q = spec.objective;
            let first = (upto - 30 * DAY_MS).max(v.window_start_ms);
            let mut day = first - first.rem_euclid(DAY_MS);
            let mut days = Vec::new();
            while day < upto {
                let value = app
                    .store
                    .merged_latency(&checks, day, (day + DAY_MS).min(upto))?
                    .filter(|h| !h.is_empty())
                    .map(|h| h.value_at_quantile(q) as f64 / 1e6);
                days.push((t.local(day).chars().take(10).collect::<String>(), value));
                day += DAY_MS;
            }
            let label = format!("p{}", (q * 100.0 * 10.0).round() / 10.0);
            svg.push_str(&charts::percentile(&format!("latency-{name}"), &label, &days, threshold));
        }
        out.push((name.clone(), svg));
    }
    Ok(out)
}
