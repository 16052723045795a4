//! `/checks/{name}`: one check for the engineer on call — what it is (kind, target, interval,
//! thresholds), who probes it and what each agent saw last, its results and latency over the
//! last hour as a picture, its state changes of the last day, its incidents, its certificate —
//! with links to its services, its incidents, its agents and Grafana.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::app::App;
use crate::core::charts::{self, Minute};
use crate::core::slo::{Period, PeriodStatus};
use crate::core::state::CheckState;
use crate::core::time::{human_span, now_ms, Shown};
use crate::http::oncall::{blocking, html, problem, row, who};
use crate::http::views::{esc, layout, time, IncidentRow};
use crate::store::{IncidentFilter, SampleFilter, StoredSample};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Everything the page shows.
pub struct CheckPage {
    pub id: String,
    pub facts: Vec<(String, String)>,
    pub services: Vec<String>,
    pub state: Option<CheckState>,
    /// Per agent: its vote (quorum checks) and its newest result.
    pub agents: Vec<(String, Option<CheckState>, Option<StoredSample>)>,
    pub minutes: Vec<Minute>,
    pub changes: Vec<Period>,
    pub incidents: Vec<IncidentRow>,
    pub cert_days_left: Option<f64>,
    pub grafana: Option<String>,
    pub from_ms: i64,
}

/// The check's configuration in words.
fn facts_of(app: &App, id: &str) -> Vec<(String, String)> {
    let Some(c) = app.config.checks.get(id) else {
        return vec![("Kind".into(), "announced by its agent (a local check)".into())];
    };
    let ms = |d: vakt_config::HumanDuration| human_span(i64::try_from(d.get().as_millis()).unwrap_or(i64::MAX));
    let mut f: Vec<(String, String)> = vec![("Kind".into(), c.kind.as_str().into())];
    if !c.target.get_ref().is_empty() {
        f.push(("Target".into(), c.target.get_ref().clone()));
    }
    match (&c.schedule, c.kind) {
        (Some(s), _) => f.push((
            "Due".into(),
            format!("{} {} (grace {})", s.get_ref(), c.tz.as_ref().map_or("UTC", |t| t.get_ref()), ms(c.grace())),
        )),
        (None, vakt_config::CheckKind::Heartbeat) => {
            f.push(("Due".into(), format!("every {} (grace {})", ms(*c.interval.get_ref()), ms(c.grace()))))
        }
        (None, _) => {
            f.push(("Interval".into(), format!("{} (timeout {})", ms(*c.interval.get_ref()), ms(c.timeout()))))
        }
    }
    f.push((
        "Down / up after".into(),
        format!("{} failed / {} good results in a row", c.fail_after.get_ref(), c.recover_after.get_ref()),
    ));
    let mut thresholds = Vec::new();
    if let Some(d) = &c.degraded_latency {
        thresholds.push(format!("degraded above {}", ms(*d.get_ref())));
    }
    if let Some(d) = &c.cert_min_days {
        thresholds.push(format!("certificate at least {} days", d.get_ref()));
    }
    if let Some(s) = &c.expect_status {
        thresholds.push(format!("status {:?}", s.get_ref()));
    }
    if let Some(p) = &c.json_path {
        let expect = c.json_expect.as_ref().map_or("exists".to_string(), |e| e.get_ref().clone());
        thresholds.push(format!("{} {expect}", p.get_ref()));
    }
    if let Some(v) = &c.max_value {
        thresholds.push(format!("at most {}", v.get_ref()));
    }
    if let Some(q) = &c.quorum {
        thresholds.push(format!("down when {} agents agree", q.get_ref()));
    }
    if !thresholds.is_empty() {
        f.push(("Thresholds".into(), thresholds.join("; ")));
    }
    if !c.labels.is_empty() {
        f.push(("Labels".into(), c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")));
    }
    f
}

/// Results per minute: counts from the rollups (kept longest), latency percentiles from the raw
/// samples of that minute when they are kept.
pub(crate) fn minutes_of(events: &[crate::core::slo::MinuteEvents], samples: &[StoredSample]) -> Vec<Minute> {
    let mut latency: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for s in samples {
        if let Some(l) = s.latency_seconds {
            latency.entry(s.timestamp_ms - s.timestamp_ms.rem_euclid(60_000)).or_default().push(l);
        }
    }
    let quantile = |v: &mut Vec<f64>, q: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        Some(v[i])
    };
    events
        .iter()
        .map(|e| {
            let mut l = latency.remove(&e.minute_ms).unwrap_or_default();
            Minute {
                minute_ms: e.minute_ms,
                ok: e.events - e.bad_events.min(e.events),
                failed: e.bad_events,
                p50: quantile(&mut l, 0.5),
                p99: quantile(&mut l, 0.99),
            }
        })
        .collect()
}

/// Gathers the page at `now_ms`; `None` when no such check is configured or known.
pub fn gather(app: &App, id: &str, now_ms: i64) -> Result<Option<CheckPage>, crate::store::StoreError> {
    let states = app.store.check_states()?;
    let state = states.iter().find(|(c, _)| c == id).map(|(_, s)| s.clone());
    if state.is_none() && !app.config.checks.contains_key(id) {
        return Ok(None);
    }
    // Whole minutes, as the rollups count them: from the minute an hour ago to now.
    let from_ms = (now_ms - HOUR_MS) - (now_ms - HOUR_MS).rem_euclid(60_000);
    let samples = app.store.samples(&SampleFilter {
        check: Some(id.to_string()),
        from_ms: Some(from_ms),
        to_ms: Some(now_ms + 1),
        limit: Some(20_000),
        newest: true,
    })?;
    // Per agent: the newest result, and its vote when the check has a quorum.
    let prefix = format!("{id}@");
    let mut agents: BTreeMap<String, (Option<CheckState>, Option<StoredSample>)> = BTreeMap::new();
    for a in app.config.agents.keys().filter(|a| app.config.is_assigned(a.as_str(), id)) {
        agents.entry(a.to_string()).or_default();
    }
    for (key, s) in states.iter().filter(|(c, _)| c.starts_with(&prefix)) {
        agents.entry(key[prefix.len()..].to_string()).or_default().0 = Some(s.clone());
    }
    for s in &samples {
        let slot = agents.entry(s.agent.clone()).or_default();
        if slot.1.as_ref().is_none_or(|x| x.timestamp_ms < s.timestamp_ms) {
            slot.1 = Some(s.clone());
        }
    }
    agents.remove(crate::core::heartbeat::HEARTBEAT_AGENT);
    let events = app.store.minute_events(&[id.to_string()], from_ms, now_ms + 1, None)?;
    let changes = app.store.periods(&[id.to_string()], now_ms - DAY_MS, now_ms + 1)?.pop().unwrap_or_default();
    let incidents = app
        .store
        .incidents(&IncidentFilter { subject: Some(id.to_string()), limit: Some(10), ..Default::default() })?
        .into_iter()
        .map(|i| row(app, i))
        .collect();
    let cert_days_left = samples.iter().rev().find_map(|s| s.values.get("cert_days_left").copied());
    Ok(Some(CheckPage {
        id: id.to_string(),
        facts: facts_of(app, id),
        services: crate::core::catalog::services_of(&app.config, crate::core::incident::IncidentKind::CheckDown, id),
        state,
        agents: agents.into_iter().map(|(a, (vote, last))| (a, vote, last)).collect(),
        minutes: minutes_of(&events, &samples),
        changes,
        incidents,
        cert_days_left,
        grafana: app
            .config
            .grafana_url
            .as_ref()
            .map(|g| format!("{}/d/vakt-overview?var-check={id}", g.trim_end_matches('/'))),
        from_ms,
    }))
}

fn state_words(s: &CheckState) -> (&'static str, String) {
    let status = s.status.as_str();
    let word = match (status, s.degraded) {
        ("up", true) => "up, degraded",
        (other, _) => other,
    };
    (status, word.to_string())
}

/// The page.
pub fn render(p: &CheckPage, t: &Shown, who: &str) -> String {
    let mut body = String::new();
    let (class, words) = p.state.as_ref().map_or(("unknown", "no results yet".to_string()), state_words);
    body.push_str(&format!(
        "<p id=\"state\" class=\"state {class}\" data-state=\"{class}\"><strong>{}</strong>{}</p>\n",
        esc(&words),
        p.state
            .as_ref()
            .filter(|s| s.status != crate::core::state::Status::Unknown)
            .map(|s| format!(" since {}", time(t, s.since_ms)))
            .unwrap_or_default()
    ));
    if let Some(err) = p.state.as_ref().and_then(|s| s.last_error.as_deref()).filter(|_| class != "up") {
        body.push_str(&format!(
            "<p class=\"cause\">{} <details><summary>full reason</summary><pre>{}</pre></details></p>\n",
            esc(&crate::core::cause::short(err)),
            esc(err)
        ));
    }
    body.push_str("<dl id=\"facts\">\n");
    for (k, v) in &p.facts {
        body.push_str(&format!("<dt>{}</dt><dd>{}</dd>\n", esc(k), esc(v)));
    }
    let services: Vec<String> =
        p.services.iter().map(|s| format!("<a href=\"/services/{0}\">{0}</a>", esc(s))).collect();
    body.push_str(&format!(
        "<dt>Services</dt><dd>{}</dd>\n",
        if services.is_empty() { "—".into() } else { services.join(", ") }
    ));
    if let Some(days) = p.cert_days_left {
        body.push_str(&format!("<dt>Certificate</dt><dd id=\"cert\">expires in {days:.1} days</dd>\n"));
    }
    if let Some(g) = &p.grafana {
        body.push_str(&format!("<dt>Dashboards</dt><dd><a href=\"{}\">Grafana</a></dd>\n", esc(g)));
    }
    body.push_str(&format!(
        "</dl>\n<h2>The last hour</h2>\n<figure id=\"last-hour\" data-from-ms=\"{}\" data-to-ms=\"{}\">",
        p.from_ms,
        t.now_ms + 1
    ));
    body.push_str(&charts::results(
        "results",
        &p.minutes,
        p.from_ms,
        t.now_ms,
        (&t.local(p.from_ms), &t.local(t.now_ms)),
    ));
    body.push_str("</figure>\n<h2>Agents</h2>\n");
    if p.agents.is_empty() {
        body.push_str("<p class=\"muted\">No agent probes it.</p>\n");
    } else {
        body.push_str("<table id=\"agents\"><thead><tr><th>Agent</th><th>Vote</th><th>Last result</th><th>Latency</th><th>When</th></tr></thead><tbody>\n");
        for (agent, vote, last) in &p.agents {
            let vote = vote.as_ref().map_or("—".to_string(), |v| state_words(v).1);
            let (result, latency, when) = match last {
                Some(s) => (
                    if s.success {
                        "ok".to_string()
                    } else {
                        format!("failed: {}", crate::core::cause::short(s.error.as_deref().unwrap_or("")))
                    },
                    s.latency_seconds.map_or("—".into(), |l| format!("{:.0} ms", l * 1000.0)),
                    time(t, s.timestamp_ms),
                ),
                None => ("none in the last hour".to_string(), "—".into(), "—".into()),
            };
            body.push_str(&format!(
                "<tr data-agent=\"{a}\"><td><a href=\"/agents#agent-{a}\">{a}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{when}</td></tr>\n",
                esc(&vote),
                esc(&result),
                esc(&latency),
                a = esc(agent),
            ));
        }
        body.push_str("</tbody></table>\n");
    }
    body.push_str("<h2>State changes in the last day</h2>\n");
    if p.changes.is_empty() {
        body.push_str("<p class=\"muted\">None.</p>\n");
    } else {
        body.push_str("<ul id=\"changes\">\n");
        for c in p.changes.iter().rev() {
            let word = match c.status {
                PeriodStatus::Up => "up",
                PeriodStatus::Down => "down",
                _ => "unknown",
            };
            let lasted = match c.end_ms {
                Some(e) => format!("for {}", human_span(e - c.start_ms)),
                None => "until now".into(),
            };
            body.push_str(&format!("<li><strong>{word}</strong> {} · {}</li>\n", time(t, c.start_ms), esc(&lasted)));
        }
        body.push_str("</ul>\n");
    }
    body.push_str("<h2>Incidents</h2>\n");
    if p.incidents.is_empty() {
        body.push_str("<p class=\"muted\">None.</p>\n");
    } else {
        body.push_str("<ul id=\"incidents\">\n");
        for r in &p.incidents {
            let i = &r.incident;
            body.push_str(&format!(
                "<li><a href=\"/incidents/{id}\">#{id} {}</a> · {} · {}</li>\n",
                esc(&i.title),
                esc(i.status.as_str()),
                time(t, i.opened_ms),
                id = i.id
            ));
        }
        body.push_str("</ul>\n");
    }
    layout(&format!("Check {}", p.id), who, &body)
}

/// The check's results from an hour before an incident to its end (or now), at most a day:
/// the picture for the incident's page.
pub fn around_incident(
    app: &App,
    i: &crate::core::incident::Incident,
    t: &Shown,
) -> Result<Option<String>, crate::store::StoreError> {
    use crate::core::incident::IncidentKind;
    if !matches!(i.kind, IncidentKind::CheckDown | IncidentKind::CheckWarning | IncidentKind::Flapping) {
        return Ok(None);
    }
    let start = i.opened_ms - HOUR_MS;
    let from = start - start.rem_euclid(60_000);
    let to = i.resolved_ms.map_or(t.now_ms, |r| (r + 15 * 60_000).min(t.now_ms)).min(from + DAY_MS) + 1;
    let check = vec![i.subject.clone()];
    let events = app.store.minute_events(&check, from, to, None)?;
    let samples = app.store.samples(&SampleFilter {
        check: Some(i.subject.clone()),
        from_ms: Some(from),
        to_ms: Some(to),
        limit: Some(50_000),
        newest: false,
    })?;
    let svg = charts::results("around", &minutes_of(&events, &samples), from, to, (&t.local(from), &t.local(to)));
    Ok(Some(format!("<p><a href=\"/checks/{0}\">Check {0}</a></p>\n{svg}", esc(&i.subject))))
}

pub(crate) async fn check_page(State(app): State<Arc<App>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let who = who(&app, &headers);
    let now = now_ms();
    let wanted = id.clone();
    match blocking(&app, move |a| gather(a, &wanted, now)).await {
        Ok(Some(page)) => html(StatusCode::OK, render(&page, &app.shown(now), &who)),
        Ok(None) => problem(StatusCode::NOT_FOUND, &who, &format!("There is no check {id:?}.")),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, &who, &e),
    }
}
