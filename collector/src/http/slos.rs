//! Routes for people about service levels: SLOs now, and SLA reports per period.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::app::App;
use crate::core::time::{now_ms, rfc3339};
use crate::http::api::error;

#[derive(Serialize)]
pub(crate) struct SloView {
    name: String,
    service: String,
    objective: f64,
    window_start: String,
    window_end: String,
    achieved: Option<f64>,
    met: bool,
    /// no_data, met, on_track, at_risk or breached (a calendar window still running is judged
    /// against the whole period).
    status: crate::core::slo::Status,
    /// When the budget runs out at the burn rate so far (a calendar window still running).
    #[serde(skip_serializing_if = "Option::is_none")]
    forecast_exhausted_at: Option<String>,
    /// Minutes of the window with data (valid time, or minutes with probes).
    observed_minutes: f64,
    /// "ms" for time-based SLOs, "events" otherwise.
    unit: &'static str,
    valid: f64,
    bad: f64,
    downtime_minutes: f64,
    unknown_minutes: f64,
    excluded_minutes: f64,
    error_budget_allowed: f64,
    error_budget_spent: f64,
    /// Time-based SLOs: the error budget in minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_budget_allowed_minutes: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_budget_spent_minutes: Option<f64>,
    error_budget_remaining_ratio: f64,
    burn_rates: std::collections::BTreeMap<String, f64>,
    alerts: Vec<String>,
    /// Latency SLOs: the latency at the objective's quantile over the window (p99 for 99).
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_quantile_seconds: Option<f64>,
}

pub(crate) async fn list_slos(State(app): State<Arc<App>>) -> Response {
    let store_app = app.clone();
    let now = now_ms();
    let evaluated = tokio::task::spawn_blocking(move || {
        let evaluations = crate::evaluate::slos::evaluate_all(store_app.store.as_ref(), &store_app.config, now)?;
        let mut quantiles = std::collections::HashMap::new();
        for e in &evaluations {
            if let Some(c) = store_app.config.slos.get(e.name.as_str()) {
                let q = crate::evaluate::slos::latency_quantile(
                    store_app.store.as_ref(),
                    &store_app.config,
                    c,
                    e.verdict.window_start_ms,
                    now,
                )?;
                quantiles.insert(e.name.clone(), q);
            }
        }
        Ok::<_, crate::store::StoreError>((evaluations, quantiles))
    })
    .await;
    let (evaluations, quantiles) = match evaluated {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let views: Vec<SloView> = evaluations
        .into_iter()
        .filter_map(|e| {
            let cfg = app.config.slos.get(e.name.as_str())?;
            let v = e.verdict;
            let spec = crate::evaluate::slos::spec(&app.config, &e.name, cfg);
            let time_based = spec.method == crate::core::slo::Method::Time;
            let minutes = |ms: u64| ms as f64 / 60_000.0;
            Some(SloView {
                service: cfg.service.get_ref().clone(),
                objective: *cfg.objective.get_ref() / 100.0,
                window_start: rfc3339(v.window_start_ms),
                window_end: rfc3339(v.window_end_ms),
                achieved: v.achieved,
                met: v.met,
                status: v.status,
                observed_minutes: spec.observed_ms(&v) as f64 / 60_000.0,
                forecast_exhausted_at: v.forecast_exhausted_ms.map(rfc3339),
                unit: if time_based { "ms" } else { "events" },
                valid: v.sli.valid,
                bad: v.sli.bad,
                downtime_minutes: minutes(v.counts.down_ms),
                unknown_minutes: minutes(v.counts.unknown_ms),
                excluded_minutes: minutes(v.counts.excluded_ms),
                error_budget_allowed: v.budget_allowed,
                error_budget_spent: v.budget_spent,
                error_budget_allowed_minutes: time_based.then(|| v.budget_allowed / 60_000.0),
                error_budget_spent_minutes: time_based.then(|| v.budget_spent / 60_000.0),
                error_budget_remaining_ratio: v.budget_remaining_ratio,
                burn_rates: e
                    .published_burn_rates
                    .iter()
                    .map(|(w, r)| (crate::core::time::human_duration_ms(*w), *r))
                    .collect(),
                latency_quantile_seconds: quantiles.get(&e.name).copied().flatten(),
                alerts: v.alerts.iter().map(crate::core::slo::BurnAlert::describe).collect(),
                name: e.name,
            })
        })
        .collect();
    Json(views).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportQuery {
    service: Option<String>,
    customer: Option<String>,
    vendor: Option<String>,
    period: String,
    format: Option<String>,
    timezone: Option<String>,
}

pub(crate) async fn sla_report(
    State(app): State<Arc<App>>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let scope = match (q.service, q.customer, q.vendor) {
        (Some(s), None, None) => crate::evaluate::report::Scope::Service(s),
        (None, Some(c), None) => crate::evaluate::report::Scope::Customer(c),
        (None, None, Some(v)) => crate::evaluate::report::Scope::Vendor(v),
        _ => return error(StatusCode::BAD_REQUEST, "give exactly one of service, customer, vendor"),
    };
    let Some(format) = crate::evaluate::report::Format::parse(q.format.as_deref().unwrap_or("json")) else {
        return error(StatusCode::BAD_REQUEST, "format is one of json, csv, html");
    };
    let store_app = app.clone();
    let now = now_ms();
    let built = tokio::task::spawn_blocking(move || {
        // Default: the SLOs' own time zone.
        let tz = q.timezone.as_deref();
        crate::evaluate::report::build(store_app.store.as_ref(), &store_app.config, &scope, &q.period, tz, now)
    })
    .await;
    match built {
        Ok(Ok(report)) => {
            ([(header::CONTENT_TYPE, format.content_type())], crate::evaluate::report::render(&report, format))
                .into_response()
        }
        Ok(Err(crate::evaluate::report::ReportError::Invalid(e))) => error(StatusCode::BAD_REQUEST, e),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
