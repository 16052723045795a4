//! Serves the on-call pages (`views.rs`): the incident list and detail with their forms, and the
//! SLA view. Every route here needs an API token (see `access.rs`); a form post acts as the
//! token's name and answers with a redirect back to the incident.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::sync::Arc;

use crate::app::App;
use crate::core::incident::{Incident, IncidentStatus, ManualError, ManualOp};
use crate::core::time::now_ms;
use crate::http::views::{self, IncidentRow, SlaRow};
use crate::store::IncidentFilter;

const DAY_MS: i64 = 86_400_000;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/incidents", get(incident_list))
        .route("/incidents/{id}", get(incident_detail))
        .route("/incidents/{id}/ack", post(ack))
        .route("/incidents/{id}/notes", post(note))
        .route("/incidents/{id}/resolve", post(resolve))
        .route("/sla", get(sla))
        .route("/agents", get(agent_list))
        .route("/checks/{name}", get(crate::http::check_page::check_page))
        .route("/services/{name}", get(crate::http::service_page::service_page))
}

async fn agent_list(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let who = who(&app, &headers);
    match blocking(&app, |a| a.store.agents()).await {
        Ok(known) => {
            let now = now_ms();
            html(StatusCode::OK, views::agents(&crate::http::fleet::overview(&app, known, now), &app.shown(now), &who))
        }
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, &who, &e),
    }
}

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

pub(crate) fn problem(status: StatusCode, who: &str, message: &str) -> Response {
    html(status, views::layout("Something went wrong", who, &format!("<p id=\"problem\">{}</p>", views::esc(message))))
}

pub(crate) fn who(app: &App, headers: &HeaderMap) -> String {
    crate::http::access::caller(app, headers).unwrap_or_default()
}

pub(crate) fn row(app: &App, incident: Incident) -> IncidentRow {
    let services = crate::core::catalog::services_of(&app.config, incident.kind, &incident.subject);
    IncidentRow {
        customers: crate::core::catalog::customers_of(&app.config, &services),
        services,
        targets: crate::core::incident::targets_of(&incident, &app.config, now_ms()),
        root_path: Vec::new(),
        incident,
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let a = app.clone();
    match tokio::task::spawn_blocking(move || f(&a)).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

async fn incident_list(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let who = who(&app, &headers);
    let now = now_ms();
    let lists = blocking(&app, move |a| {
        let open = a.store.incidents(&IncidentFilter { status: Some(IncidentStatus::Open), ..Default::default() })?;
        let recent = a.store.incidents(&IncidentFilter {
            status: Some(IncidentStatus::Resolved),
            overlapping: Some((now - 14 * DAY_MS, now)),
            limit: Some(100),
            ..Default::default()
        })?;
        Ok((open, recent))
    })
    .await;
    match lists {
        Ok((open, recent)) => {
            let open: Vec<IncidentRow> = open.into_iter().map(|i| row(&app, i)).collect();
            let recent: Vec<IncidentRow> = recent.into_iter().map(|i| row(&app, i)).collect();
            html(StatusCode::OK, views::incidents(&open, &recent, &who, &app.shown(now)))
        }
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, &who, &e),
    }
}

async fn incident_detail(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let who = who(&app, &headers);
    let Ok(id) = id.parse::<i64>() else {
        return problem(StatusCode::BAD_REQUEST, &who, &format!("incident id {id:?} is not a number"));
    };
    match blocking(&app, move |a| a.store.incident(id)).await {
        Ok(Some(i)) => {
            let shown = app.shown(now_ms());
            let mut r = row(&app, i.clone());
            if let Some(parent) = i.parent_id {
                let root = blocking(&app, move |a| a.store.incident(parent)).await.ok().flatten();
                if let Some(root) = root {
                    let to = crate::core::catalog::services_of(&app.config, root.kind, &root.subject);
                    r.root_path = dependency_path(&app.config, &r.services, &to);
                }
            }
            let (a, inc, t) = (app.clone(), i.clone(), shown.clone());
            let around = blocking(&app, move |_| crate::http::check_page::around_incident(&a, &inc, &t)).await;
            let mut page = views::incident(&r, &who, &shown, around.ok().flatten().as_deref());
            // Telling customers: a status page post prefilled from the incident.
            if i.status != IncidentStatus::Resolved && !r.services.is_empty() {
                let form = format!(
                    "<h2>Tell customers</h2>\n{}",
                    crate::http::status_posts::new_post_form(&app, Some((i.id, &r.services)))
                );
                page = page.replacen("</body>", &format!("{form}</body>"), 1);
            }
            html(StatusCode::OK, page)
        }
        Ok(None) => problem(StatusCode::NOT_FOUND, &who, &format!("There is no incident {id}.")),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, &who, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    note: String,
    #[serde(default)]
    text: String,
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

async fn act(
    app: Arc<App>,
    headers: HeaderMap,
    id: String,
    form: ActionForm,
    op: impl FnOnce(String, ActionForm) -> Option<ManualOp>,
) -> Response {
    let who = who(&app, &headers);
    let Ok(id) = id.parse::<i64>() else {
        return problem(StatusCode::BAD_REQUEST, &who, &format!("incident id {id:?} is not a number"));
    };
    if form.note.len().max(form.text.len()) > crate::http::api::MAX_TEXT_BYTES {
        let limit = crate::http::api::MAX_TEXT_BYTES;
        return problem(StatusCode::BAD_REQUEST, &who, &format!("A note may be at most {limit} bytes long."));
    }
    let Some(op) = op(who.clone(), form) else {
        return problem(StatusCode::BAD_REQUEST, &who, "A note needs some text.");
    };
    match blocking(&app, move |a| a.store.manual(id, &op, now_ms())).await {
        Ok(Ok(_)) => {
            app.metrics.set_incidents_open_from(&*app.store);
            Redirect::to(&format!("/incidents/{id}")).into_response()
        }
        Ok(Err(e @ ManualError::NotFound(_))) => problem(StatusCode::NOT_FOUND, &who, &e.to_string()),
        Ok(Err(e)) => problem(StatusCode::CONFLICT, &who, &e.to_string()),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, &who, &e),
    }
}

async fn ack(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Response {
    act(app, headers, id, f, |by, f| Some(ManualOp::Acknowledge { by, note: non_empty(f.note) })).await
}

async fn note(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Response {
    act(app, headers, id, f, |by, f| non_empty(f.text).map(|text| ManualOp::Note { by, text })).await
}

async fn resolve(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<ActionForm>,
) -> Response {
    act(app, headers, id, f, |by, f| Some(ManualOp::Resolve { by, note: non_empty(f.note) })).await
}

/// The shortest chain of services from one of `from` to one of `to` along `depends_on`
/// (breadth first); empty when none joins them.
fn dependency_path(config: &vakt_config::CollectorConfig, from: &[String], to: &[String]) -> Vec<String> {
    let mut queue: std::collections::VecDeque<Vec<String>> = from.iter().map(|s| vec![s.clone()]).collect();
    let mut seen: std::collections::HashSet<String> = from.iter().cloned().collect();
    while let Some(path) = queue.pop_front() {
        let last = path.last().cloned().unwrap_or_default();
        if to.contains(&last) {
            return path;
        }
        for d in config.services.get(last.as_str()).map(|s| s.depends_on.as_slice()).unwrap_or_default() {
            if seen.insert(d.get_ref().clone()) {
                let mut next = path.clone();
                next.push(d.get_ref().clone());
                queue.push_back(next);
            }
        }
    }
    Vec::new()
}

/// The months offered for download: this one and the two before, in UTC.
fn recent_months(now_ms: i64) -> Vec<String> {
    let Ok(t) = jiff::Timestamp::from_millisecond(now_ms) else { return Vec::new() };
    let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
    (0..3)
        .filter_map(|back| d.first_of_month().checked_sub(jiff::Span::new().months(back)).ok())
        .map(|m| format!("{:04}-{:02}", m.year(), m.month()))
        .collect()
}

async fn sla(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let who = who(&app, &headers);
    let now = now_ms();
    let evaluations =
        match blocking(&app, move |a| crate::evaluate::slos::evaluate_all(a.store.as_ref(), &a.config, now)).await {
            Ok(e) => e,
            Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, &who, &e),
        };
    // Each SLO's budget over its window, as a line: the share left at 48 points in time.
    let shown = app.shown(now);
    let charts = {
        let (a, list, t) = (
            app.clone(),
            evaluations.iter().map(|e| (e.name.clone(), e.verdict.clone())).collect::<Vec<_>>(),
            shown.clone(),
        );
        blocking(&app, move |_| crate::http::slo_charts::sla_pictures(&a, &list, &t)).await.unwrap_or_default()
    };
    let rows: Vec<SlaRow> = evaluations
        .into_iter()
        .filter_map(|e| {
            let cfg = app.config.slos.get(e.name.as_str())?;
            let v = &e.verdict;
            let spec = crate::evaluate::slos::spec(&app.config, &e.name, cfg);
            let time_based = spec.method == crate::core::slo::Method::Time;
            let status = match v.status {
                crate::core::slo::Status::NotEnoughData => format!(
                    "not enough data yet ({} of {} observed)",
                    crate::core::time::human_span(spec.observed_ms(v)),
                    crate::core::time::human_span(v.window_end_ms - v.window_start_ms)
                ),
                other => other.as_str().to_string(),
            };
            Some(SlaRow {
                service: cfg.service.get_ref().clone(),
                objective: *cfg.objective.get_ref() / 100.0,
                achieved: v.achieved,
                met: v.met,
                status,
                budget_remaining_ratio: v.budget_remaining_ratio,
                downtime_minutes: time_based.then(|| v.counts.down_ms as f64 / 60_000.0),
                window: format!("{} to {}", shown.local(v.window_start_ms), shown.local(v.window_end_ms)),
                alerts: v.alerts.iter().map(crate::core::slo::BurnAlert::describe).collect(),
                budget_chart: charts.iter().find(|(n, _)| *n == e.name).map(|(_, c)| c.clone()),
                slo: e.name,
            })
        })
        .collect();
    html(StatusCode::OK, views::sla(&rows, &recent_months(now), &who))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// shop → payments → db, and a shortcut shop → db is taken when there is one.
    #[test]
    fn the_dependency_path_runs_from_the_incident_to_its_root_cause() {
        let config = vakt_config::CollectorConfig::parse(
            "[services.db]\nchecks = []\n[services.payments]\nchecks = []\ndepends_on = [\"db\"]\n[services.shop]\nchecks = []\ndepends_on = [\"payments\"]\n[services.other]\nchecks = []\n",
            std::path::Path::new("c.toml"),
        )
        .unwrap();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(dependency_path(&config, &s(&["shop"]), &s(&["db"])), s(&["shop", "payments", "db"]));
        assert_eq!(dependency_path(&config, &s(&["shop"]), &s(&["other"])), Vec::<String>::new());
    }

    #[test]
    fn months_offered_cross_the_year() {
        // 2026-01-15
        assert_eq!(recent_months(1_768_435_200_000), ["2026-01", "2025-12", "2025-11"]);
    }
}
