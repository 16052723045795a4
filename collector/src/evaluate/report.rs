//! SLA reports per service, customer or vendor and calendar period, as JSON, CSV or HTML.
//! Planned maintenance is shown and, where the SLO says so, excluded.

use jiff::tz::TimeZone;
use serde::Serialize;
use vakt_config::CollectorConfig;

use crate::core::incident::{Incident, IncidentKind};
use crate::core::slo::named_period;
use crate::core::time::rfc3339;
use crate::evaluate::slos::{series, service_checks, spec};
use crate::store::{IncidentFilter, Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Service(String),
    Customer(String),
    Vendor(String),
}

impl Scope {
    fn label(&self) -> String {
        match self {
            Scope::Service(s) => format!("service {s}"),
            Scope::Customer(c) => format!("customer {c}"),
            Scope::Vendor(v) => format!("vendor {v}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Html,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "html" => Some(Format::Html),
            _ => None,
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug, Serialize)]
pub struct SloRow {
    pub service: String,
    pub slo: String,
    pub objective_percent: f64,
    pub achieved_percent: Option<f64>,
    pub met: bool,
    /// "no data", "met", "breached"; for a period still running "on track" or "at risk".
    pub status: &'static str,
    /// A running period: when its budget runs out at the burn rate so far.
    pub forecast_exhausted_at: Option<String>,
    pub downtime_minutes: f64,
    pub excluded_maintenance_minutes: f64,
    /// The service hours the SLO counts in (`[service_hours.NAME]`), and the minutes of the
    /// period outside them (neither counted nor budgeted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_hours: Option<String>,
    pub outside_service_hours_minutes: f64,
    pub unknown_minutes: f64,
    /// Time-based SLOs: the period's valid minutes (less maintenance and, by the unknown
    /// policy, unknown time) and the error budget in minutes: allowed, spent, remaining.
    pub valid_minutes: Option<f64>,
    pub error_budget_allowed_minutes: Option<f64>,
    pub error_budget_spent_minutes: Option<f64>,
    pub error_budget_remaining_minutes: Option<f64>,
    pub error_budget_spent_percent: f64,
    /// Latency SLOs: the latency at the objective's quantile over the period (p99 for 99).
    pub latency_quantile_seconds: Option<f64>,
    /// For the pictures: the share of the period's budget left at 48 points through it, and
    /// the SLI per day (local days of the report's zone; `None` without data).
    #[serde(skip)]
    pub budget_points: Vec<(i64, f64)>,
    #[serde(skip)]
    pub days: Vec<(String, Option<f64>)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct IncidentRow {
    pub id: i64,
    pub kind: IncidentKind,
    pub subject: String,
    pub title: String,
    pub severity: String,
    pub opened_at: String,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<String>,
    pub duration_minutes: Option<f64>,
    /// Its duration inside the report's period (up to now while it is open).
    pub minutes_in_period: f64,
    /// Opened and resolved as instants, for the timeline.
    #[serde(skip)]
    pub opened_ms: i64,
    #[serde(skip)]
    pub resolved_ms: Option<i64>,
    /// Its acknowledgement and resolution targets (`response_targets`), met or breached.
    #[serde(skip_serializing_if = "crate::core::incident::Targets::is_empty")]
    pub targets: crate::core::incident::Targets,
}

/// One breach a customer or vendor may claim on: an SLO or an incident's target.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BreachRow {
    /// "slo", "acknowledge" or "resolve".
    pub kind: &'static str,
    pub services: Vec<String>,
    pub customers: Vec<String>,
    /// The SLO's name, or the incident's title.
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<i64>,
    /// The SLO's budget, or the target, in minutes.
    pub allowed_minutes: Option<f64>,
    /// Budget spent, or the time the incident took (so far, when still running).
    pub took_minutes: Option<f64>,
    /// When the target was due (targets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MaintenanceRow {
    pub name: String,
    pub start: String,
    pub end: String,
    pub services: Vec<String>,
    pub change_id: Option<String>,
    pub excluded_from_sla: bool,
    /// Minutes the covered services stayed down past the window's end (counted as downtime).
    pub overran_minutes: f64,
    /// "config" for windows of collector.toml; otherwise the API token (or "cli") that made it.
    pub created_by: String,
    /// When it was made through the API or CLI.
    pub created_at: Option<String>,
    /// Made after its start on purpose: it took recorded downtime out of the SLA.
    pub retroactive: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scope: String,
    pub period: String,
    /// The zone the period is taken in: the SLOs' own unless the request named another.
    pub timezone: String,
    /// Said when the request's zone differs from the SLOs' own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone_note: Option<String>,
    /// The period's length in that zone (a month with a DST change has an hour more or less).
    pub period_minutes: f64,
    pub from: String,
    pub to: String,
    /// The period as instants, and its first and last local dates, for the pictures.
    #[serde(skip)]
    pub from_ms: i64,
    #[serde(skip)]
    pub to_ms: i64,
    #[serde(skip)]
    pub dates: (String, String),
    pub generated_at: String,
    pub services: Vec<String>,
    pub slos: Vec<SloRow>,
    pub incidents: Vec<IncidentRow>,
    pub maintenance: Vec<MaintenanceRow>,
    /// Incidents that missed their acknowledgement or resolution target.
    pub target_breaches: usize,
    /// Every breach of the period, for the customer or vendor: SLOs whose whole-period budget
    /// is spent, and each missed acknowledgement or resolution target.
    pub breaches: Vec<BreachRow>,
    /// Mean time to acknowledge, over the acknowledged incidents.
    pub mtta_minutes: Option<f64>,
    /// Mean time to resolve, over the resolved incidents.
    pub mttr_minutes: Option<f64>,
}

pub fn build(
    store: &dyn Store,
    config: &CollectorConfig,
    scope: &Scope,
    period: &str,
    tz: Option<&str>,
    now_ms: i64,
) -> Result<Report, ReportError> {
    let services: Vec<String> = config
        .services
        .iter()
        .filter(|(name, s)| match scope {
            Scope::Service(n) => name.as_str() == n,
            Scope::Customer(c) => s.customers.iter().any(|x| x == c),
            Scope::Vendor(v) => s.vendor.as_deref() == Some(v.as_str()),
        })
        .map(|(name, _)| name.to_string())
        .collect();
    if services.is_empty() {
        return Err(ReportError::Invalid(format!("no service matches {}", scope.label())));
    }
    // The contract's time zone: that of the report's SLOs (an Oslo contract's October has
    // 44,700 minutes). An explicit zone that differs is said on the report.
    let contract = contract_zone(config, &services);
    let tz = tz.unwrap_or(&contract);
    let timezone_note = (tz != contract).then(|| format!("the SLOs of this report are defined in {contract}"));
    let zone = TimeZone::get(tz).map_err(|_| ReportError::Invalid(format!("unknown time zone {tz:?}")))?;
    let (from, to) = named_period(period, &zone).map_err(ReportError::Invalid)?;
    let upto = to.min(now_ms).max(from);
    let mut slos = Vec::new();
    let mut breaches = Vec::new();
    for (name, c) in config.slos.iter().filter(|(_, c)| services.contains(c.service.get_ref())) {
        let slo = spec(config, name.as_str(), c);
        let s = series(store, config, c, from, upto)?;
        // A period still running is judged against the whole period.
        let a = slo.assess_period(&s, from, to, now_ms);
        let minutes = |ms: u64| ms as f64 / 60_000.0;
        let time_based = slo.method == crate::core::slo::Method::Time;
        let in_minutes = |v: f64| time_based.then_some(v / 60_000.0);
        // Excluded time is maintenance and time outside the service hours: told apart.
        let outside_ms: i64 = slo.hours.as_ref().map_or(0, |h| h.outside(from, upto).iter().map(|(a, b)| b - a).sum());
        let outside_ms = u64::try_from(outside_ms).unwrap_or(0);
        if a.status == crate::core::slo::Status::Breached {
            breaches.push(BreachRow {
                kind: "slo",
                services: vec![c.service.get_ref().clone()],
                customers: crate::core::catalog::customers_of(config, std::slice::from_ref(c.service.get_ref())),
                what: name.to_string(),
                incident: None,
                allowed_minutes: in_minutes(a.budget_allowed),
                took_minutes: in_minutes(a.budget_spent),
                due_at: None,
            });
        }
        slos.push(SloRow {
            service_hours: slo.hours.as_ref().map(|h| h.name.clone()),
            outside_service_hours_minutes: minutes(outside_ms),
            valid_minutes: in_minutes(a.sli.valid),
            error_budget_allowed_minutes: in_minutes(a.budget_allowed),
            error_budget_spent_minutes: in_minutes(a.budget_spent),
            error_budget_remaining_minutes: in_minutes(a.budget_allowed - a.budget_spent),
            service: c.service.get_ref().clone(),
            slo: name.to_string(),
            objective_percent: *c.objective.get_ref(),
            achieved_percent: a.achieved.map(|x| x * 100.0),
            met: a.met,
            status: a.status.as_str(),
            forecast_exhausted_at: a.forecast_exhausted_ms.map(rfc3339),
            downtime_minutes: minutes(a.counts.down_ms),
            excluded_maintenance_minutes: minutes(a.counts.excluded_ms.saturating_sub(outside_ms)),
            unknown_minutes: minutes(a.counts.unknown_ms),
            error_budget_spent_percent: if a.budget_allowed > 0.0 {
                a.budget_spent / a.budget_allowed * 100.0
            } else {
                0.0
            },
            latency_quantile_seconds: crate::evaluate::slos::latency_quantile(store, config, c, from, upto)?,
            budget_points: slo.budget_left(&s, from, upto, a.budget_allowed, 48),
            days: local_days(&zone, from, upto)
                .into_iter()
                .map(|(label, a, b)| (label, slo.assess(&s, a, b).achieved))
                .collect(),
        });
    }
    // Incidents of the services' checks and SLOs that overlap the period.
    let mut incidents: Vec<Incident> = Vec::new();
    let mut subjects: Vec<(IncidentKind, String)> = Vec::new();
    for s in &services {
        subjects.extend(service_checks(config, s).into_iter().map(|c| (IncidentKind::CheckDown, c)));
    }
    subjects.extend(
        config
            .slos
            .iter()
            .filter(|(_, c)| services.contains(c.service.get_ref()))
            .map(|(n, _)| (IncidentKind::SloBurn, n.to_string())),
    );
    for (kind, subject) in subjects {
        incidents.extend(store.incidents(&IncidentFilter {
            kind: Some(kind),
            subject: Some(subject),
            overlapping: Some((from, to)),
            ..Default::default()
        })?);
    }
    incidents.sort_by_key(|i| (i.opened_ms, i.id));
    let (mtta_ms, mttr_ms) = crate::core::incident::mean_times_ms(&incidents);
    let (mtta_minutes, mttr_minutes) = (mtta_ms.map(|m| m / 60_000.0), mttr_ms.map(|m| m / 60_000.0));
    for i in &incidents {
        let services = crate::core::catalog::services_of(config, i.kind, &i.subject);
        let customers = crate::core::catalog::customers_of(config, &services);
        let targets = crate::core::incident::targets_of(i, config, now_ms);
        for (kind, t) in [("acknowledge", &targets.acknowledge), ("resolve", &targets.resolve)] {
            let Some(t) = t.as_ref().filter(|t| t.met == Some(false)) else { continue };
            breaches.push(BreachRow {
                kind,
                services: services.clone(),
                customers: customers.clone(),
                what: i.title.clone(),
                incident: Some(i.id),
                allowed_minutes: Some(t.target_ms as f64 / 60_000.0),
                took_minutes: Some(t.elapsed_ms as f64 / 60_000.0),
                due_at: Some(rfc3339(t.due_ms)),
            });
        }
    }
    let incidents: Vec<IncidentRow> = incidents
        .into_iter()
        .map(|i| IncidentRow {
            targets: crate::core::incident::targets_of(&i, config, now_ms),
            duration_minutes: i.resolved_ms.map(|r| (r - i.opened_ms) as f64 / 60_000.0),
            // Up to now for one still open; only the part inside the period.
            minutes_in_period: (i.resolved_ms.unwrap_or(now_ms).min(to) - i.opened_ms.max(from)).max(0) as f64
                / 60_000.0,
            opened_ms: i.opened_ms,
            resolved_ms: i.resolved_ms,
            opened_at: rfc3339(i.opened_ms),
            acknowledged_at: i.acknowledged_ms.map(rfc3339),
            acknowledged_by: i.acknowledged_by,
            resolved_at: i.resolved_ms.map(rfc3339),
            id: i.id,
            kind: i.kind,
            subject: i.subject,
            title: i.title,
            severity: i.severity,
        })
        .collect();
    let created = store.maintenance(from, to)?;
    let mut maintenance = Vec::new();
    for o in crate::core::maintenance::occurrences_in(Some(config), &config.maintenance, &created, from, to) {
        let touched: Vec<String> = services.iter().filter(|s| o.covers(s)).cloned().collect();
        if touched.is_empty() {
            continue;
        }
        let checks: Vec<String> = touched.iter().flat_map(|s| service_checks(config, s)).collect();
        let overrun = if o.end_ms <= now_ms {
            crate::core::maintenance::overrun_ms(o.end_ms, now_ms, &store.periods(&checks, o.start_ms, now_ms)?)
        } else {
            0
        };
        maintenance.push(MaintenanceRow {
            name: o.name,
            start: rfc3339(o.start_ms),
            end: rfc3339(o.end_ms),
            services: touched,
            change_id: o.change_id,
            excluded_from_sla: o.exclude_from_sla,
            overran_minutes: overrun as f64 / 60_000.0,
            created_by: o.created.as_ref().map_or_else(|| "config".to_string(), |c| c.by.clone()),
            created_at: o.created.as_ref().filter(|c| c.at_ms > 0).map(|c| rfc3339(c.at_ms)),
            retroactive: o.created.as_ref().is_some_and(|c| c.retroactive),
        });
    }
    let target_breaches = incidents.iter().filter(|i| i.targets.breached()).count();
    Ok(Report {
        target_breaches,
        breaches,
        maintenance,
        scope: scope.label(),
        period: period.to_string(),
        timezone: tz.to_string(),
        timezone_note,
        period_minutes: (to - from) as f64 / 60_000.0,
        from: rfc3339(from),
        to: rfc3339(to),
        from_ms: from,
        to_ms: to,
        dates: (local_date(&zone, from), local_date(&zone, to)),
        generated_at: rfc3339(now_ms),
        services,
        slos,
        incidents,
        mtta_minutes,
        mttr_minutes,
    })
}

/// The time zone of the SLOs of `services` when they share one (an SLO without one is in
/// UTC); UTC when they differ or there are none.
fn contract_zone(config: &CollectorConfig, services: &[String]) -> String {
    let mut zones: Vec<String> = config
        .slos
        .values()
        .filter(|c| services.contains(c.service.get_ref()))
        .map(|c| c.timezone.as_ref().map_or_else(|| "UTC".to_string(), |t| t.get_ref().clone()))
        .collect();
    zones.sort();
    zones.dedup();
    match zones.as_slice() {
        [one] => one.clone(),
        _ => "UTC".to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_default()
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "—"
    } else {
        s
    }
}

fn html_escape(s: &str) -> String {
    crate::core::html::escape(s)
}

/// The local date of `ms` in `zone`, "2026-11-01".
fn local_date(zone: &TimeZone, ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_zoned(zone.clone()).date().to_string()).unwrap_or_default()
}

/// The local days of `zone` from `from_ms` to `to_ms`: ("2026-11-03", start, end), the last
/// cut at `to_ms` (a DST day is 23 or 25 hours long).
pub fn local_days(zone: &TimeZone, from_ms: i64, to_ms: i64) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    let Ok(start) = jiff::Timestamp::from_millisecond(from_ms) else { return out };
    let mut day = start.to_zoned(zone.clone()).date();
    loop {
        let Ok(a) = day.to_zoned(zone.clone()) else { break };
        let a_ms = a.timestamp().as_millisecond().max(from_ms);
        if a_ms >= to_ms || out.len() > 400 {
            break;
        }
        let Ok(next) = day.tomorrow() else { break };
        let b_ms = next.to_zoned(zone.clone()).map_or(to_ms, |z| z.timestamp().as_millisecond()).min(to_ms);
        out.push((day.to_string(), a_ms, b_ms));
        day = next;
    }
    out
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default(),
        Format::Csv => {
            let mut out = String::from(
                "period,service,slo,objective_percent,achieved_percent,status,downtime_minutes,excluded_maintenance_minutes,unknown_minutes,error_budget_spent_percent\n",
            );
            for r in &report.slos {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{:.2},{:.2},{:.2},{:.2}\n",
                    csv_field(&report.period),
                    csv_field(&r.service),
                    csv_field(&r.slo),
                    r.objective_percent,
                    num(r.achieved_percent),
                    r.status,
                    r.downtime_minutes,
                    r.excluded_maintenance_minutes,
                    r.unknown_minutes,
                    r.error_budget_spent_percent
                ));
            }
            out
        }
        Format::Html => {
            let mut rows = String::new();
            for r in &report.slos {
                rows.push_str(&format!(
                    "<tr class=\"{cls}\"><td>{}</td><td>{}</td><td>{}%</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}%</td><td>{budget}</td></tr>\n",
                    html_escape(&r.service),
                    html_escape(&r.slo),
                    r.objective_percent,
                    r.achieved_percent.map(|a| format!("{a:.3}%")).unwrap_or_else(|| "no data".into()),
                    r.status,
                    r.downtime_minutes,
                    r.excluded_maintenance_minutes,
                    r.unknown_minutes,
                    r.error_budget_spent_percent,
                    cls = r.status.replace(' ', "-"),
                    budget = match (r.error_budget_allowed_minutes, r.error_budget_spent_minutes, r.error_budget_remaining_minutes) {
                        (Some(a), Some(s), Some(l)) => format!("{a:.1} / {s:.1} / {l:.1}"),
                        _ => "—".into(),
                    },
                ));
            }
            let mut incidents = String::new();
            for i in &report.incidents {
                incidents.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    i.id,
                    html_escape(&i.title),
                    html_escape(&i.opened_at),
                    html_escape(i.acknowledged_at.as_deref().unwrap_or("—")),
                    html_escape(i.resolved_at.as_deref().unwrap_or("open")),
                    i.duration_minutes.map(|d| format!("{d:.1} min")).unwrap_or_default(),
                    html_escape(&i.targets.describe()),
                ));
            }
            let mut breach_rows = String::new();
            for b in &report.breaches {
                let fig = |v: Option<f64>| v.map(|m| format!("{m:.1} min")).unwrap_or_else(|| "—".into());
                breach_rows.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    b.kind,
                    html_escape(&b.what),
                    b.incident.map(|i| format!("#{i}")).unwrap_or_else(|| "—".into()),
                    html_escape(&b.services.join(", ")),
                    html_escape(or_dash(&b.customers.join(", "))),
                    fig(b.allowed_minutes),
                    fig(b.took_minutes),
                ));
            }
            if breach_rows.is_empty() {
                breach_rows.push_str("<tr><td colspan=\"7\">none</td></tr>\n");
            }
            let mut maintenance = String::new();
            for m in &report.maintenance {
                maintenance.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}{}</td></tr>\n",
                    html_escape(&m.name),
                    html_escape(&m.start),
                    html_escape(&m.end),
                    html_escape(m.change_id.as_deref().unwrap_or("—")),
                    if m.excluded_from_sla { "yes" } else { "no" },
                    if m.overran_minutes > 0.0 { format!("{:.1} min", m.overran_minutes) } else { "no".into() },
                    html_escape(&m.created_by),
                    m.created_at.as_deref().map(|t| format!(" at {}", html_escape(t))).unwrap_or_default(),
                    if m.retroactive { " <strong>(retroactive)</strong>" } else { "" },
                ));
            }
            // The pictures: per SLO the budget through the period and the SLI per day; the
            // incidents on one timeline.
            let (from_ms, to_ms) = (report.from_ms, report.to_ms);
            let ends = (report.dates.0.as_str(), report.dates.1.as_str());
            let mut pictures = String::new();
            for r in &report.slos {
                let floor = (r.objective_percent / 100.0).min(0.99) - 0.01;
                let days: Vec<crate::core::charts::Day> = r
                    .days
                    .iter()
                    .map(|(label, good)| crate::core::charts::Day { label: label.clone(), good: *good })
                    .collect();
                pictures.push_str(&format!(
                    "<section class=\"pictures\"><h3>{}</h3>\n{}\n{}</section>\n",
                    html_escape(&r.slo),
                    crate::core::charts::budget(
                        &format!("budget-{}", r.slo),
                        &r.budget_points,
                        (from_ms, to_ms),
                        ends,
                        &[]
                    ),
                    crate::core::charts::days(&format!("days-{}", r.slo), "Achieved per day", &days, floor.max(0.0)),
                ));
            }
            let spans: Vec<crate::core::charts::Span> = report
                .incidents
                .iter()
                .map(|i| crate::core::charts::Span {
                    label: format!("#{} {}", i.id, i.title),
                    start_ms: i.opened_ms,
                    end_ms: i.resolved_ms,
                })
                .collect();
            let timeline = crate::core::charts::timeline("incidents", &spans, from_ms, to_ms, ends);
            format!(
                r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SLA report {period} — {scope}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1d2630; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #c8d0d8; padding: .35rem .6rem; text-align: left; }}
tr.met td:nth-child(5), tr.on-track td:nth-child(5) {{ color: #17702f; font-weight: 600; }}
tr.at-risk td:nth-child(5) {{ color: #9a5b00; font-weight: 600; }}
tr.breached td:nth-child(5) {{ color: #b3261e; font-weight: 600; }}
.pictures svg {{ max-width: 48rem; display: block; margin: .4rem 0; }}
@media print {{
  body {{ margin: 0; font-size: 10pt; }}
  h2, h3 {{ break-after: avoid; }}
  table, svg, .pictures {{ break-inside: avoid; }}
  a {{ color: inherit; text-decoration: none; }}
}}
</style></head>
<body>
<h1>SLA report {period}</h1>
<p>{scope} · {from} to {to} ({tz}, {minutes} minutes{note}) · generated {generated}</p>
<h2>Service levels</h2>
<table><thead><tr><th>Service</th><th>SLO</th><th>Target</th><th>Achieved</th><th>Result</th><th>Downtime (min)</th><th>Planned maintenance excluded (min)</th><th>No data (min)</th><th>Error budget spent</th><th>Budget allowed / spent / left (min)</th></tr></thead>
<tbody>
{rows}</tbody></table>
{pictures}<h2>Breaches</h2>
<table id="breaches"><thead><tr><th>Kind</th><th>What</th><th>Incident</th><th>Services</th><th>Customers</th><th>Allowed</th><th>Took / spent</th></tr></thead>
<tbody>
{breach_rows}</tbody></table>
<h2>Planned maintenance</h2>
<table><thead><tr><th>Window</th><th>Start</th><th>End</th><th>Change</th><th>Excluded from SLA</th><th>Overran</th><th>Created by</th></tr></thead>
<tbody>
{maintenance}</tbody></table>
<h2>Incidents</h2>
<p>MTTA {mtta} · MTTR {mttr} · response or resolution targets missed: {target_breaches}</p>
<div class="pictures">{timeline}</div>
<table><thead><tr><th>#</th><th>Incident</th><th>Opened</th><th>Acknowledged</th><th>Resolved</th><th>Duration</th><th>Targets</th></tr></thead>
<tbody>
{incidents}</tbody></table>
</body></html>
"#,
                period = html_escape(&report.period),
                scope = html_escape(&report.scope),
                from = html_escape(&report.from),
                to = html_escape(&report.to),
                tz = html_escape(&report.timezone),
                minutes = report.period_minutes,
                note = report.timezone_note.as_deref().map(|n| format!("; {}", html_escape(n))).unwrap_or_default(),
                generated = html_escape(&report.generated_at),
                target_breaches = report.target_breaches,
                mtta = report.mtta_minutes.map(|m| format!("{m:.1} min")).unwrap_or_else(|| "—".into()),
                mttr = report.mttr_minutes.map(|m| format!("{m:.1} min")).unwrap_or_else(|| "—".into()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(timezone: &str) -> CollectorConfig {
        let text = format!(
            "[services.shop]\nchecks = []\n\
             [slos.shop-month]\nservice = \"shop\"\nobjective = 99.9\ncalendar = \"month\"\ntimezone = \"{timezone}\"\n"
        );
        CollectorConfig::parse(&text, std::path::Path::new("collector.toml")).unwrap()
    }

    /// A report speaks in the contract's terms: an Oslo contract's October 2026 runs from
    /// 1 October 00:00 CEST to 1 November 00:00 CET, 31 days and the hour the clocks go back:
    /// 31 × 1,440 + 60 = 44,700 minutes. Its budget at 99.9 % is 44.7 minutes; with no data at
    /// all the period is "no data". Asked in UTC, the month has 44,640 minutes and the report
    /// says the SLOs are Oslo's.
    #[test]
    fn a_report_takes_the_slos_time_zone_and_says_when_asked_for_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SqliteStore::open(dir.path()).unwrap();
        let cfg = config("Europe/Oslo");
        let now = 1_800_000_000_000; // 2027-01-15: October 2026 is over
        let scope = Scope::Service("shop".into());
        let oslo = build(&store, &cfg, &scope, "2026-10", None, now).unwrap();
        assert_eq!((oslo.timezone.as_str(), oslo.period_minutes), ("Europe/Oslo", 44_700.0));
        assert_eq!(oslo.from, "2026-09-30T22:00:00Z");
        assert_eq!(oslo.timezone_note, None);
        let row = &oslo.slos[0];
        assert_eq!((row.status, row.met, row.achieved_percent), ("no data", false, None));
        let utc = build(&store, &cfg, &scope, "2026-10", Some("UTC"), now).unwrap();
        assert_eq!(utc.period_minutes, 44_640.0);
        assert_eq!(utc.timezone_note.as_deref(), Some("the SLOs of this report are defined in Europe/Oslo"));
        let html = render(&utc, Format::Html);
        assert!(html.contains("UTC, 44640 minutes; the SLOs of this report are defined in Europe/Oslo"), "{html}");
    }
}
