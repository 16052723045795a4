//! Vakt's own pages, rendered on the server (no JavaScript): the status page for customers and
//! SVG badges.

use vakt_config::CollectorConfig;

use crate::core::incident::{Incident, IncidentStatus};
use crate::core::slo::MINUTE_MS;
use crate::core::status_post::StatusPost;
use crate::evaluate::service::{availability, service_state};
use crate::http::views::esc;
use crate::store::{IncidentFilter, Store, StoreError};

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

use crate::app::App;
use crate::core::time::now_ms;
use crate::http::api::error;

const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Debug, PartialEq)]
pub struct DayBar {
    /// "2026-11-25"
    pub date: String,
    /// Up time over valid time that day; `None` without data.
    pub uptime: Option<f64>,
    pub down_minutes: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceStatus {
    pub name: String,
    pub description: Option<String>,
    /// operational, degraded, down, maintenance, unknown
    pub state: &'static str,
    pub days: Vec<DayBar>,
    pub uptime: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct StatusPage {
    pub services: Vec<ServiceStatus>,
    pub active: Vec<Incident>,
    pub history: Vec<Incident>,
    pub maintenance: Vec<crate::core::maintenance::Occurrence>,
    /// Posts people wrote, open at some time in the last 90 days, newest first.
    pub posts: Vec<StatusPost>,
    pub generated_ms: i64,
}

/// The start (UTC) of day "2026-11-25".
pub fn day_of(date: &str) -> Option<i64> {
    let d: jiff::civil::Date = date.parse().ok()?;
    d.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_millisecond())
}

/// A service's last `n` days (UTC days, today last) and its availability over them.
pub fn service_days(
    store: &dyn Store,
    config: &CollectorConfig,
    name: &str,
    now_ms: i64,
    n: i64,
) -> Result<(Vec<DayBar>, Option<f64>), StoreError> {
    let today = now_ms - now_ms.rem_euclid(DAY_MS);
    let from = today - (n - 1) * DAY_MS;
    let series = crate::evaluate::slos::service_series(store, config, name, from, now_ms)?;
    let slo = availability();
    let days = (0..n)
        .map(|d| {
            let a = from + d * DAY_MS;
            let b = (a + DAY_MS).min(now_ms);
            let x = slo.assess(&series, a, b);
            DayBar {
                date: jiff::Timestamp::from_millisecond(a)
                    .map(|t| t.strftime("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                uptime: x.achieved,
                down_minutes: x.counts.down_ms as f64 / MINUTE_MS as f64,
            }
        })
        .collect();
    Ok((days, slo.assess(&series, from, now_ms).achieved))
}

pub fn build(store: &dyn Store, config: &CollectorConfig, now_ms: i64) -> Result<StatusPage, StoreError> {
    build_for(store, config, now_ms, None)
}

/// The status page of `only` these services (all when `None`): an audience's page shows its
/// services, the incidents, posts and maintenance that touch them, and nothing else.
pub fn build_for(
    store: &dyn Store,
    config: &CollectorConfig,
    now_ms: i64,
    only: Option<&[String]>,
) -> Result<StatusPage, StoreError> {
    let shown = |name: &str| only.is_none_or(|o| o.iter().any(|s| s == name));
    let mut services = Vec::new();
    for (name, svc) in config.services.iter().filter(|(n, _)| shown(n.as_str())) {
        let (days, uptime) = service_days(store, config, name.as_str(), now_ms, 90)?;
        services.push(ServiceStatus {
            name: name.to_string(),
            description: svc.description.clone(),
            state: service_state(store, config, name.as_str(), now_ms)?,
            uptime,
            days,
        });
    }
    let touches = |i: &Incident| crate::core::catalog::services_of(config, i.kind, &i.subject).iter().any(|s| shown(s));
    let active = store
        .incidents(&IncidentFilter { status: Some(IncidentStatus::Open), ..Default::default() })?
        .into_iter()
        .filter(|i| touches(i) && i.parent_id.is_none())
        .collect();
    let history = store
        .incidents(&IncidentFilter {
            status: Some(IncidentStatus::Resolved),
            overlapping: Some((now_ms - 14 * DAY_MS, now_ms)),
            limit: Some(50),
            ..Default::default()
        })?
        .into_iter()
        .filter(|i| touches(i))
        .collect();
    // Scheduled (the next 7 days), in progress, and completed in the last day.
    let created = store.maintenance(now_ms - DAY_MS, now_ms + 7 * DAY_MS)?;
    let maintenance = crate::core::maintenance::occurrences_in(
        Some(config),
        &config.maintenance,
        &created,
        now_ms - DAY_MS,
        now_ms + 7 * DAY_MS,
    )
    .into_iter()
    .filter(|m| only.is_none_or(|o| o.iter().any(|s| m.covers(s))))
    .collect();
    let posts = store
        .posts(Some((now_ms - 90 * DAY_MS, now_ms + 1)), 200)?
        .into_iter()
        .filter(|p| p.services.is_empty() || p.services.iter().any(|s| shown(s)))
        .collect();
    Ok(StatusPage { services, active, history, maintenance, posts, generated_ms: now_ms })
}

fn state_label(state: &str) -> &'static str {
    match state {
        "operational" => "Operational",
        "degraded" => "Degraded performance",
        "down" => "Outage",
        "maintenance" => "Under maintenance",
        _ => "No data",
    }
}

/// An incident as customers read it: what is affected, without the probe's own words
/// (addresses, error text) unless `status_page_details` is set.
pub fn public_title(i: &Incident) -> String {
    use crate::core::incident::IncidentKind;
    match i.kind {
        IncidentKind::CheckDown => format!("{} is down", i.subject),
        IncidentKind::Flapping => format!("{} is unstable", i.subject),
        IncidentKind::CheckWarning => format!("{} is degraded", i.subject),
        IncidentKind::SloBurn => format!("{}: service level at risk", i.subject),
        IncidentKind::AgentSilent => "monitoring is interrupted for some services".to_string(),
    }
}

/// How a status page looks: the collector's own, or an audience's (its title, logo, footer, and
/// no links to the collector-wide history, feed and subscriptions).
#[derive(Clone, Debug, Default)]
pub struct Look<'a> {
    pub audience: Option<&'a crate::core::audience::AudiencePage>,
}

pub fn render(page: &StatusPage, config: &CollectorConfig, t: &crate::core::time::Shown) -> String {
    render_as(page, config, t, &Look::default())
}

pub fn render_as(page: &StatusPage, config: &CollectorConfig, t: &crate::core::time::Shown, look: &Look<'_>) -> String {
    let time = |ms: i64| crate::http::views::time(t, ms);
    let time_only = |ms: i64| crate::http::views::time_only(t, ms);
    let overall = if page.services.iter().any(|s| s.state == "down") {
        ("down", "Some services are down")
    } else if page.services.iter().any(|s| s.state == "degraded" || s.state == "maintenance") {
        ("degraded", "Some services are degraded or in maintenance")
    } else {
        ("operational", "All services are operational")
    };
    let mut services = String::new();
    for s in &page.services {
        let mut bars = String::new();
        for d in &s.days {
            let (class, tip) = match d.uptime {
                None => ("none", format!("{}: no data", d.date)),
                Some(u) if u >= 0.999 => ("good", format!("{}: {:.2}% up", d.date, u * 100.0)),
                Some(u) if u >= 0.99 => {
                    ("warn", format!("{}: {:.2}% up, {:.0} min down", d.date, u * 100.0, d.down_minutes))
                }
                Some(u) => ("bad", format!("{}: {:.2}% up, {:.0} min down", d.date, u * 100.0, d.down_minutes)),
            };
            let day_posts = page
                .posts
                .iter()
                .filter(|p| p.services.is_empty() || p.services.contains(&s.name))
                .filter(|p| day_of(&d.date).is_some_and(|from| p.overlaps(from, from + DAY_MS)))
                .count();
            if day_posts > 0 && look.audience.is_none() {
                bars.push_str(&format!(
                    "<a class=\"bar {class}\" href=\"/status/history?day={}\" title=\"{}\"></a>",
                    esc(&d.date),
                    esc(&format!("{tip}; {day_posts} incident report{}", if day_posts == 1 { "" } else { "s" }))
                ));
            } else {
                bars.push_str(&format!("<span class=\"bar {class}\" title=\"{}\"></span>", esc(&tip)));
            }
        }
        services.push_str(&format!(
            "<section class=\"service\" data-service=\"{name}\" data-state=\"{state}\">\n<h3>{name} <span class=\"state {state}\">{label}</span></h3>\n{desc}<div class=\"bars\" aria-label=\"90 days\">{bars}</div>\n<p class=\"uptime\">{uptime} over 90 days</p>\n</section>\n",
            name = esc(&s.name),
            state = s.state,
            label = state_label(s.state),
            desc = s.description.as_ref().map(|d| format!("<p class=\"description\">{}</p>\n", esc(d))).unwrap_or_default(),
            uptime = s.uptime.map(|u| format!("{:.3}%", u * 100.0)).unwrap_or_else(|| "No data".into()),
        ));
    }
    let incident_row = |i: &Incident| {
        let services = crate::core::catalog::services_of(config, i.kind, &i.subject).join(", ");
        let title = if config.access.status_page_details { i.title.clone() } else { public_title(i) };
        format!(
            "<li class=\"incident\" data-id=\"{}\"><strong>{}</strong> <span class=\"muted\">{} · since {}{}</span></li>\n",
            i.id,
            esc(&title),
            esc(&services),
            time(i.opened_ms),
            i.resolved_ms.map(|r| format!(" · resolved {} after {}", time_only(r), crate::core::time::human_span(r - i.opened_ms))).unwrap_or_default()
        )
    };
    let active: String = page.active.iter().map(incident_row).collect();
    let history: String = page.history.iter().map(incident_row).collect();
    let maintenance: String = page
        .maintenance
        .iter()
        .map(|m| {
            let now = page.generated_ms;
            let affected = crate::core::status_post::affected(&m.services);
            // Past its end with a service it covers still not operational: overrunning.
            let behind: Vec<&str> = page
                .services
                .iter()
                .filter(|s| m.covers(&s.name) && s.state != "operational" && s.state != "unknown")
                .map(|s| s.name.as_str())
                .collect();
            let (phase, label) = if now < m.start_ms {
                ("scheduled", "Scheduled".to_string())
            } else if now < m.end_ms {
                ("in-progress", "In progress".to_string())
            } else if !behind.is_empty() {
                (
                    "overrunning",
                    format!(
                        "Overrunning: ended {} ago, {} not yet back",
                        crate::core::time::human_span(now - m.end_ms),
                        behind.join(", ")
                    ),
                )
            } else {
                ("completed", "Completed".to_string())
            };
            format!(
                "<li class=\"maintenance {phase}\" data-phase=\"{phase}\"><strong>{}</strong> <span class=\"phase\">{}</span> <span class=\"muted\">{} to {} · {}</span></li>\n",
                esc(&m.name),
                esc(&label),
                time(m.start_ms),
                time_only(m.end_ms),
                esc(&affected)
            )
        })
        .collect();
    let or_none = |s: String, none: &str| if s.is_empty() { format!("<li class=\"muted\">{none}</li>") } else { s };
    let (heading, top, footer) = match look.audience {
        None => (
            "Service status".to_string(),
            String::new(),
            "<p class=\"muted\"><a href=\"/status/history\">Incident history</a> · <a href=\"/status/feed.atom\">Atom feed</a> · <a href=\"/status/subscribe\">Subscribe to updates</a></p>".to_string(),
        ),
        Some(a) => (
            a.title.clone(),
            a.logo.as_ref().map(|l| format!("<img class=\"logo\" src=\"{}\" alt=\"{} logo\" height=\"48\">\n", esc(l), esc(&a.title))).unwrap_or_default(),
            format!(
                "<p class=\"muted footer\">{}</p>",
                a.footer.iter().map(|(text, url)| format!("<a href=\"{}\">{}</a>", esc(url), esc(text))).collect::<Vec<_>>().join(" · ")
            ),
        ),
    };
    let body = format!(
        r#"{top}<h1>{heading}</h1>
<p class="banner {overall_class}" id="overall">{overall_text}</p>
{posts}<h2>Active incidents</h2>
<ul id="active">{active}</ul>
<h2>Planned maintenance</h2>
<ul id="maintenance">{maintenance}</ul>
<h2>Services</h2>
{services}
<h2>Past incidents (14 days)</h2>
<ul id="history">{history}</ul>
{footer}
<p class="muted">Updated {generated}</p>
"#,
        heading = esc(&heading),
        overall_class = overall.0,
        overall_text = overall.1,
        posts = open_posts(&page.posts, t, look.audience.is_none()),
        active = or_none(active, "No active incidents"),
        maintenance = or_none(maintenance, "None planned in the next 7 days"),
        history = or_none(history, "No incidents"),
        generated = time_only(page.generated_ms),
    );
    public_layout(&heading, &body)
}

/// Open posts at the top of the status page: each with its latest update.
fn open_posts(posts: &[StatusPost], t: &crate::core::time::Shown, links: bool) -> String {
    let open: Vec<&StatusPost> = posts.iter().filter(|p| p.is_open()).collect();
    if open.is_empty() {
        return String::new();
    }
    let mut out = String::from("<section id=\"posts\">\n");
    for p in open {
        let latest = p.latest();
        out.push_str(&format!(
            "<article class=\"post {impact}\" data-post=\"{id}\"><h2>{}</h2>\n<p class=\"muted\">{} · affects {}</p>\n{}</article>\n",
            if links { format!("<a href=\"/status/incidents/{}\">{}</a>", p.id, esc(&p.title)) } else { esc(&p.title) },
            p.impact.label(),
            esc(&crate::core::status_post::affected(&p.services)),
            latest
                .map(|u| format!(
                    "<p><strong>{}</strong> — {}<br>{}</p>\n",
                    u.status.label(),
                    crate::http::views::time(t, u.at_ms),
                    esc(&u.message)
                ))
                .unwrap_or_default(),
            impact = p.impact.as_str(),
            id = p.id,
        ));
    }
    out.push_str("</section>\n");
    out
}

/// The frame of every public page: title, styles, no script.
pub fn public_layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="alternate" type="application/atom+xml" title="Status updates" href="/status/feed.atom">
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1.5rem; color: #1d2630; }}
a {{ color: #0b5cad; }}
.banner {{ padding: 1rem 1.25rem; border-radius: .5rem; color: #fff; font-weight: 600; }}
.banner.operational {{ background: #17702f; }} .banner.degraded {{ background: #9a5b00; }} .banner.down {{ background: #b3261e; }}
.post {{ border-left: .35rem solid #9a5b00; padding: .2rem 1rem; margin: 1rem 0; background: #fbf7ef; }}
.post.major_outage {{ border-color: #b3261e; background: #fbf0ef; }} .post h2 {{ margin: .3rem 0; font-size: 1.2rem; }}
.updates li {{ margin: .6rem 0; }}
.service {{ border-bottom: 1px solid #e3e7eb; padding: .75rem 0; }}
.service h3 {{ margin: .2rem 0; display: flex; justify-content: space-between; }}
.state {{ font-size: .9rem; }} .state.operational {{ color: #17702f; }} .state.degraded, .state.maintenance {{ color: #9a5b00; }}
.state.down {{ color: #b3261e; }} .state.unknown {{ color: #6b7785; }}
.bars {{ display: flex; gap: 2px; height: 2rem; margin: .4rem 0; }}
.bar {{ flex: 1; border-radius: 2px; display: block; }} .bar.good {{ background: #2e9b4f; }} .bar.warn {{ background: #e0a100; }}
.bar.bad {{ background: #d93a2b; }} .bar.none {{ background: #d5dbe1; }}
.muted {{ color: #6b7785; font-size: .9rem; }} .uptime, .description {{ margin: .2rem 0; color: #4a5663; }}
ul {{ padding-left: 1.2rem; }}
.phase {{ font-size: .9rem; font-weight: 600; color: #4a5663; }} .overrunning .phase {{ color: #b3261e; }}
</style></head>
<body>
{body}</body></html>
"#,
        title = esc(title)
    )
}

/// A flat two-part badge, as shields-style badges look.
pub fn badge(label: &str, value: &str, color: &str) -> String {
    let w = |s: &str| 6 * s.chars().count() as u32 + 12;
    let (lw, vw) = (w(label), w(value));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{label}: {value}"><title>{label}: {value}</title><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{vw}" height="20" fill="{color}"/><g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="14">{label}</text><text x="{vx}" y="14">{value}</text></g></svg>"##,
        total = lw + vw,
        label = esc(label),
        value = esc(value),
        lx = lw / 2,
        vx = lw + vw / 2,
    )
}

pub fn state_color(state: &str) -> &'static str {
    match state {
        "operational" => "#2e9b4f",
        "degraded" | "maintenance" => "#e0a100",
        "down" => "#d93a2b",
        _ => "#9aa5b1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_escape_and_size() {
        let svg = badge("shop <web>", "99.95%", "#2e9b4f");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("shop &lt;web&gt;: 99.95%"));
        assert!(!svg.contains("<web>"));
    }
}

// ------------------------------------------------------------------ routes

/// A status page's query: an audience page's token, as a link can carry it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    token: Option<String>,
}

/// An audience's page (`/p/NAME`, or `/` under its host): shown with its token, or to anyone
/// when it has none.
async fn serve_audience(
    app: Arc<App>,
    page: crate::core::audience::AudiencePage,
    headers: &axum::http::HeaderMap,
    token: Option<String>,
) -> Response {
    let presented = crate::http::access::basic_password(headers).or(token);
    if !crate::core::audience::may_read(&page, presented.as_deref()) {
        let mut r =
            error(StatusCode::UNAUTHORIZED, "this status page needs its token (HTTP Basic password, or ?token=)");
        if let Ok(v) = header::HeaderValue::from_str(&format!(
            "Basic realm=\"{}\", charset=\"UTF-8\"",
            page.title.replace('"', "")
        )) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return r;
    }
    let now = now_ms();
    let (a, services) = (app.clone(), page.services.clone());
    match tokio::task::spawn_blocking(move || build_for(a.store.as_ref(), &a.config, now, Some(&services))).await {
        Ok(Ok(built)) => {
            let look = Look { audience: Some(&page) };
            let mut r = (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                render_as(&built, &app.config, &app.shown(built.generated_ms), &look),
            )
                .into_response();
            if page.token.is_some() {
                r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("private, no-store"));
            }
            r
        }
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub(crate) async fn serve_audience_page(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    match crate::core::audience::page_for(&app.audience_pages, &format!("/p/{name}"), None).cloned() {
        Some(page) => serve_audience(app, page, &headers, q.token).await,
        None => error(StatusCode::NOT_FOUND, format!("there is no status page {name:?}")),
    }
}

pub(crate) async fn serve_status_page(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(page) = crate::core::audience::page_for(&app.audience_pages, "/", host).cloned() {
        return serve_audience(app, page, &headers, q.token).await;
    }
    let store_app = app.clone();
    let now = now_ms();
    match tokio::task::spawn_blocking(move || build(store_app.store.as_ref(), &store_app.config, now)).await {
        Ok(Ok(page)) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            render(&page, &app.config, &app.shown(page.generated_ms)),
        )
            .into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BadgeQuery {
    window: Option<String>,
}

pub(crate) async fn serve_badge(
    State(app): State<Arc<App>>,
    Path((service, kind)): Path<(String, String)>,
    query: Result<Query<BadgeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !app.config.services.contains_key(service.as_str()) {
        return error(StatusCode::NOT_FOUND, format!("no service {service:?}"));
    }
    let window = match q.window.as_deref().map(vakt_config::duration::parse_duration).transpose() {
        Ok(w) => w.unwrap_or(std::time::Duration::from_secs(30 * 86_400)),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let store_app = app.clone();
    let now = now_ms();
    let svc = service.clone();
    let svg = tokio::task::spawn_blocking(move || -> Result<Option<String>, crate::store::StoreError> {
        let store = store_app.store.as_ref();
        Ok(match kind.as_str() {
            "status.svg" => {
                let state = crate::evaluate::service::service_state(store, &store_app.config, &svc, now)?;
                Some(badge(&svc, state, state_color(state)))
            }
            "uptime.svg" => {
                let ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
                let label = format!("uptime {}", vakt_config::duration::format_duration(window));
                Some(match crate::evaluate::service::uptime(store, &store_app.config, &svc, ms, now)? {
                    Some(u) => {
                        let color = if u >= 0.999 {
                            "#2e9b4f"
                        } else if u >= 0.99 {
                            "#e0a100"
                        } else {
                            "#d93a2b"
                        };
                        badge(&label, &format!("{:.2}%", u * 100.0), color)
                    }
                    None => badge(&label, "no data", "#9aa5b1"),
                })
            }
            _ => None,
        })
    })
    .await;
    match svg {
        Ok(Ok(Some(svg))) => {
            ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=60")], svg).into_response()
        }
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "badges are status.svg and uptime.svg"),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
