//! `/services/{name}`: one service for the service manager — its state, owner and customers,
//! its checks, what it depends on and what depends on it (drawn), its SLOs with a daily
//! availability strip, its open and recent incidents, and planned maintenance.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::Arc;

use crate::app::App;
use crate::core::charts::{self, Day};
use crate::core::incident::IncidentStatus;
use crate::core::state::CheckState;
use crate::core::time::{now_ms, Shown};
use crate::http::oncall::{blocking, html, problem, row, who};
use crate::http::views::{esc, layout, time, IncidentRow};
use crate::store::IncidentFilter;

const DAY_MS: i64 = 86_400_000;

/// One SLO of the service, as the page shows it.
pub struct SloLine {
    pub name: String,
    pub objective: f64,
    pub achieved: Option<f64>,
    pub budget_remaining: f64,
    pub status: String,
    /// The error budget over the window, drawn (with the burn-alert thresholds).
    pub budget_chart: String,
}

pub struct ServicePage {
    pub name: String,
    pub state: &'static str,
    pub facts: Vec<(String, String)>,
    pub checks: Vec<(String, Option<CheckState>)>,
    /// (name, state) of the services it depends on directly, and of those depending on it.
    pub depends_on: Vec<(String, &'static str)>,
    pub dependants: Vec<(String, &'static str)>,
    pub slos: Vec<SloLine>,
    pub days: Vec<Day>,
    pub open: Vec<IncidentRow>,
    pub recent: Vec<IncidentRow>,
    pub maintenance: Vec<crate::core::maintenance::Occurrence>,
    pub grafana: Option<String>,
}

pub fn gather(app: &App, name: &str, now_ms: i64) -> Result<Option<ServicePage>, crate::store::StoreError> {
    let Some(cfg) = app.config.services.get(name) else { return Ok(None) };
    let store = app.store.as_ref();
    let state_of = |s: &str| crate::evaluate::service::service_state(store, &app.config, s, now_ms);
    let mut facts = Vec::new();
    if let Some(d) = &cfg.description {
        facts.push(("Description".to_string(), d.clone()));
    }
    facts.push(("Owner".into(), cfg.owner.clone().unwrap_or_else(|| "—".into())));
    if !cfg.customers.is_empty() {
        facts.push(("Customers".into(), cfg.customers.join(", ")));
    }
    if let Some(v) = &cfg.vendor {
        facts.push(("Vendor".into(), v.clone()));
    }
    facts.push(("Criticality".into(), format!("{} (1 highest)", cfg.criticality.get_ref())));
    let states = store.check_states()?;
    let checks = cfg
        .checks
        .iter()
        .map(|c| (c.get_ref().clone(), states.iter().find(|(id, _)| id == c.get_ref()).map(|(_, s)| s.clone())))
        .collect();
    let depends_on = cfg
        .depends_on
        .iter()
        .map(|d| Ok((d.get_ref().clone(), state_of(d.get_ref())?)))
        .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
    let dependants = app
        .config
        .services
        .iter()
        .filter(|(_, s)| s.depends_on.iter().any(|d| d.get_ref() == name))
        .map(|(n, _)| Ok((n.to_string(), state_of(n.as_str())?)))
        .collect::<Result<Vec<_>, crate::store::StoreError>>()?;
    // This service's SLOs only, as the last SLO round left them (evaluated here when that
    // round is not recent).
    let mut slos = Vec::new();
    for (slo, c) in app.config.slos.iter().filter(|(_, c)| c.service.get_ref() == name) {
        let verdict = match app.recent_verdict(slo.as_str(), now_ms) {
            Some(v) => v,
            None => crate::evaluate::slos::evaluate_one(store, &app.config, slo.as_str(), c, now_ms)?.verdict,
        };
        let budget_chart = crate::http::slo_charts::budget(app, slo.as_str(), &verdict, &app.shown(now_ms))?;
        slos.push(SloLine {
            budget_chart,
            objective: *c.objective.get_ref() / 100.0,
            achieved: verdict.achieved,
            budget_remaining: verdict.budget_remaining_ratio,
            status: verdict.status.as_str().to_string(),
            name: slo.to_string(),
        });
    }
    let days = crate::http::public::service_days(store, &app.config, name, now_ms, 30)?
        .0
        .into_iter()
        .map(|d| Day { label: d.date, good: d.uptime })
        .collect();
    let touches = |i: &crate::core::incident::Incident| {
        crate::core::catalog::services_of(&app.config, i.kind, &i.subject).iter().any(|s| s == name)
    };
    let open = store
        .incidents(&IncidentFilter { status: Some(IncidentStatus::Open), ..Default::default() })?
        .into_iter()
        .filter(touches)
        .map(|i| row(app, i))
        .collect();
    let recent = store
        .incidents(&IncidentFilter {
            status: Some(IncidentStatus::Resolved),
            overlapping: Some((now_ms - 30 * DAY_MS, now_ms)),
            limit: Some(200),
            ..Default::default()
        })?
        .into_iter()
        .filter(touches)
        .take(20)
        .map(|i| row(app, i))
        .collect();
    let created = store.maintenance(now_ms, now_ms + 14 * DAY_MS)?;
    let maintenance = crate::core::maintenance::occurrences_in(
        Some(&app.config),
        &app.config.maintenance,
        &created,
        now_ms,
        now_ms + 14 * DAY_MS,
    )
    .into_iter()
    .filter(|m| m.covers(name))
    .collect();
    Ok(Some(ServicePage {
        name: name.to_string(),
        state: state_of(name)?,
        facts,
        checks,
        depends_on,
        dependants,
        slos,
        days,
        open,
        recent,
        maintenance,
        grafana: app
            .config
            .grafana_url
            .as_ref()
            .map(|g| format!("{}/d/vakt-slo?var-service={name}", g.trim_end_matches('/'))),
    }))
}

/// The dependencies, the service and its dependants as three columns of boxes joined by
/// arrows; each box says its state in words, its border in colour.
pub fn graph(p: &ServicePage) -> String {
    let row_h = 30.0;
    let rows = p.depends_on.len().max(p.dependants.len()).max(1) as f64;
    let h = rows * row_h + 10.0;
    let colour = |state: &str| match state {
        "operational" => "#2e9b4f",
        "degraded" | "maintenance" => "#d9a21b",
        "down" => "#c62828",
        _ => "#8a96a3",
    };
    let node = |x: f64, y: f64, name: &str, state: &str, link: bool| {
        let text = format!("{name} · {state}");
        let label = if link {
            format!("<a href=\"/services/{0}\"><text x=\"{1:.1}\" y=\"{2:.1}\" font-size=\"11\" fill=\"#1d2630\">{3}</text></a>", esc(name), x + 6.0, y + 15.0, esc(&text))
        } else {
            format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" font-weight=\"700\" fill=\"#1d2630\">{}</text>",
                x + 6.0,
                y + 15.0,
                esc(&text)
            )
        };
        format!(
            "<g class=\"node\" data-service=\"{}\" data-state=\"{state}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"200\" height=\"22\" rx=\"4\" fill=\"#fff\" stroke=\"{}\" stroke-width=\"2\"/>{label}</g>",
            esc(name),
            colour(state)
        )
    };
    let desc = format!(
        "{} depends on {}; {} depend on it.",
        p.name,
        if p.depends_on.is_empty() {
            "nothing".to_string()
        } else {
            p.depends_on.iter().map(|(n, s)| format!("{n} ({s})")).collect::<Vec<_>>().join(", ")
        },
        if p.dependants.is_empty() {
            "no services".to_string()
        } else {
            p.dependants.iter().map(|(n, s)| format!("{n} ({s})")).collect::<Vec<_>>().join(", ")
        }
    );
    let mut out = format!(
        "<svg id=\"dependencies\" class=\"chart\" role=\"img\" aria-labelledby=\"dependencies-title dependencies-desc\" viewBox=\"0 0 720 {h:.0}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"dependencies-title\">Dependencies</title><desc id=\"dependencies-desc\">{}</desc>",
        esc(&desc)
    );
    let mid_y = (h - 22.0) / 2.0;
    for (i, (n, s)) in p.depends_on.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        out.push_str(&node(0.0, y, n, s, true));
        out.push_str(&format!(
            "<line x1=\"200\" y1=\"{:.1}\" x2=\"258\" y2=\"{:.1}\" stroke=\"#8a96a3\" marker-end=\"url(#arrow)\"/>",
            y + 11.0,
            mid_y + 11.0
        ));
    }
    out.push_str(&node(260.0, mid_y, &p.name, p.state, false));
    for (i, (n, s)) in p.dependants.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        out.push_str(&format!(
            "<line x1=\"460\" y1=\"{:.1}\" x2=\"518\" y2=\"{:.1}\" stroke=\"#8a96a3\" marker-end=\"url(#arrow)\"/>",
            mid_y + 11.0,
            y + 11.0
        ));
        out.push_str(&node(520.0, y, n, s, true));
    }
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 6 6\" refX=\"6\" refY=\"3\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L6,3 L0,6 z\" fill=\"#8a96a3\"/></marker></defs></svg>");
    out
}

pub fn render(p: &ServicePage, t: &Shown, who: &str) -> String {
    let mut body = format!(
        "<p id=\"state\" class=\"state {0}\" data-state=\"{0}\"><strong>{0}</strong></p>\n<dl id=\"facts\">\n",
        p.state
    );
    for (k, v) in &p.facts {
        body.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(v)));
    }
    if let Some(g) = &p.grafana {
        body.push_str(&format!("<dt>Dashboards</dt><dd><a href=\"{}\">Grafana</a></dd>\n", esc(g)));
    }
    body.push_str("</dl>\n<h2>Checks</h2>\n<ul id=\"checks\">\n");
    for (c, s) in &p.checks {
        let word = s.as_ref().map_or("no results yet", |s| s.status.as_str());
        body.push_str(&format!(
            "<li data-check=\"{c}\" data-state=\"{word}\"><a href=\"/checks/{c}\">{c}</a> · {word}{}</li>\n",
            s.as_ref()
                .filter(|s| s.status == crate::core::state::Status::Down)
                .and_then(|s| s.last_error.as_deref())
                .map(|e| format!(": {}", esc(&crate::core::cause::short(e))))
                .unwrap_or_default(),
            c = esc(c),
        ));
    }
    body.push_str("</ul>\n<h2>Dependencies</h2>\n");
    body.push_str(&graph(p));
    body.push_str("\n<h2>SLOs</h2>\n");
    if p.slos.is_empty() {
        body.push_str("<p class=\"muted\">No SLO for this service.</p>\n");
    } else {
        body.push_str("<table id=\"slos\"><thead><tr><th>SLO</th><th>Target</th><th>Achieved</th><th>Error budget left</th><th>Status</th></tr></thead><tbody>\n");
        for s in &p.slos {
            body.push_str(&format!(
                "<tr data-slo=\"{}\"><td>{}</td><td>{:.3}%</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&s.name),
                esc(&s.name),
                s.objective * 100.0,
                s.achieved.map_or("no data".into(), |a| format!("{:.3}%", a * 100.0)),
                if s.budget_remaining < 0.0 {
                    "exhausted".to_string()
                } else {
                    format!("{:.1}%", s.budget_remaining * 100.0)
                },
                esc(&s.status)
            ));
        }
        body.push_str("</tbody></table>\n");
        for s in &p.slos {
            body.push_str(&format!("<h3>{}: error budget left</h3>\n{}\n", esc(&s.name), s.budget_chart));
        }
    }
    if !p.days.is_empty() {
        let floor = p.slos.iter().map(|s| s.objective).fold(1.0_f64, f64::min).min(0.99) - 0.01;
        body.push_str("<h3>Availability per day, the last 30 days</h3>\n");
        body.push_str(&charts::days("days", "Availability per day", &p.days, floor.max(0.0)));
    }
    let incidents = |rows: &[IncidentRow], none: &str| {
        if rows.is_empty() {
            return format!("<p class=\"muted\">{none}</p>\n");
        }
        let mut out = String::from("<ul>\n");
        for r in rows {
            let i = &r.incident;
            out.push_str(&format!(
                "<li data-id=\"{id}\"><a href=\"/incidents/{id}\">#{id} {}</a> · {} · {}</li>\n",
                esc(&i.title),
                esc(i.status.as_str()),
                time(t, i.opened_ms),
                id = i.id
            ));
        }
        out.push_str("</ul>\n");
        out
    };
    body.push_str("<h2>Open incidents</h2>\n<div id=\"open\">");
    body.push_str(&incidents(&p.open, "Nothing is open."));
    body.push_str("</div>\n<h2>Resolved in the last 30 days</h2>\n<div id=\"recent\">");
    body.push_str(&incidents(&p.recent, "None."));
    body.push_str("</div>\n<h2>Maintenance in the next 14 days</h2>\n");
    if p.maintenance.is_empty() {
        body.push_str("<p class=\"muted\">None planned.</p>\n");
    } else {
        body.push_str("<ul id=\"maintenance\">\n");
        for m in &p.maintenance {
            body.push_str(&format!(
                "<li><strong>{}</strong> {} to {}</li>\n",
                esc(&m.name),
                time(t, m.start_ms),
                time(t, m.end_ms)
            ));
        }
        body.push_str("</ul>\n");
    }
    layout(&format!("Service {}", p.name), who, &body)
}

pub(crate) async fn service_page(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let who = who(&app, &headers);
    let now = now_ms();
    let wanted = name.clone();
    match blocking(&app, move |a| gather(a, &wanted, now)).await {
        Ok(Some(page)) => html(StatusCode::OK, render(&page, &app.shown(now), &who)),
        Ok(None) => problem(StatusCode::NOT_FOUND, &who, &format!("There is no service {name:?}.")),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, &who, &e),
    }
}
