//! The public side of status posts: a page per post, the history (all, or one day's), the
//! Atom feed of posts and planned maintenance, and subscribing: a form, the confirmation link
//! (a page with a button: mail scanners that open links confirm nothing), and unsubscribing
//! with one click (RFC 8058: mail clients post `List-Unsubscribe=One-Click`). The subscribe
//! answer is the same whether the address was known or not, and a flood is refused with 429.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};
use serde::Deserialize;
use std::sync::Arc;

use crate::app::App;
use crate::core::status_post::{affected, StatusPost};
use crate::core::time::{now_ms, rfc3339, Shown};
use crate::http::public::{day_of, public_layout};
use crate::http::views::{esc, time};

const DAY_MS: i64 = 86_400_000;

/// The client's address, as the connection gave it (set by `front`).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/status/incidents/{id}", get(post_page))
        .route("/status/history", get(history))
        .route("/status/feed.atom", get(feed))
        .route("/status/subscribe", get(subscribe_form).post(subscribe))
        .route("/status/subscriptions/confirm", get(confirm_page).post(confirm))
        .route("/status/unsubscribe", get(unsubscribe_page).post(unsubscribe))
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], public_layout(title, body)).into_response()
}

async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    crate::http::oncall::blocking(app, f)
        .await
        .map_err(|e| page(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", &format!("<p>{}</p>", esc(&e))))
}

/// A post and its updates, newest first, as customers read it.
pub fn render_post(p: &StatusPost, t: &Shown) -> String {
    let mut out = format!(
        "<article class=\"post {}\" data-post=\"{}\"><h1>{}</h1>\n<p class=\"muted\">{} · affects {} · {}{}</p>\n<ol class=\"updates\" reversed>\n",
        p.impact.as_str(),
        p.id,
        esc(&p.title),
        p.impact.label(),
        esc(&affected(&p.services)),
        time(t, p.created_ms),
        p.resolved_ms
            .map(|r| format!(" to {} ({})", time(t, r), crate::core::time::human_span(r - p.created_ms)))
            .unwrap_or_default(),
    );
    for u in p.updates.iter().rev() {
        out.push_str(&format!(
            "<li data-status=\"{}\"><strong>{}</strong> — {}<br><span class=\"message\">{}</span></li>\n",
            u.status.as_str(),
            u.status.label(),
            time(t, u.at_ms),
            esc(&u.message).replace('\n', "<br>")
        ));
    }
    out.push_str("</ol>\n");
    if let Some(pm) = &p.postmortem {
        out.push_str(&format!("<h2>Postmortem</h2>\n<p class=\"postmortem\">{}</p>\n", esc(pm).replace('\n', "<br>")));
    }
    out.push_str("</article>\n");
    out
}

async fn post_page(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return page(StatusCode::NOT_FOUND, "Not found", "<p>There is no such incident report.</p>");
    };
    match blocking(&app, move |a| a.store.post(id)).await {
        Ok(Some(p)) => {
            let body = format!("<p><a href=\"/\">← Status</a></p>\n{}", render_post(&p, &app.shown(now_ms())));
            page(StatusCode::OK, &p.title, &body)
        }
        Ok(None) => page(StatusCode::NOT_FOUND, "Not found", "<p>There is no such incident report.</p>"),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    day: Option<String>,
}

async fn history(State(app): State<Arc<App>>, Query(q): Query<HistoryQuery>) -> Response {
    let now = now_ms();
    let (between, heading) = match q.day.as_deref() {
        None => (None, "Incident history".to_string()),
        Some(d) => match day_of(d) {
            Some(from) => (Some((from, from + DAY_MS)), format!("Incidents on {d}")),
            None => return page(StatusCode::BAD_REQUEST, "Bad day", "<p>day is YYYY-MM-DD.</p>"),
        },
    };
    let list = match blocking(&app, move |a| a.store.posts(between, 200)).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let t = app.shown(now);
    let body = format!(
        "<p><a href=\"/\">← Status</a></p>\n<h1>{}</h1>\n{}",
        esc(&heading),
        post_list(&list, "/status/incidents", &t, "No incidents reported.")
    );
    page(StatusCode::OK, &heading, &body)
}

/// Posts as a list, newest first, each linked to `{base}/{id}`: title, status, impact, start.
pub fn post_list(list: &[StatusPost], base: &str, t: &Shown, empty: &str) -> String {
    let mut out = String::from("<ul id=\"posts\">\n");
    for p in list {
        out.push_str(&format!(
            "<li data-post=\"{id}\"><a href=\"{base}/{id}\">{}</a> <span class=\"muted\">{} · {} · {}</span></li>\n",
            esc(&p.title),
            p.status.label(),
            p.impact.label(),
            time(t, p.created_ms),
            id = p.id
        ));
    }
    if list.is_empty() {
        out.push_str(&format!("<li class=\"muted\">{}</li>\n", esc(empty)));
    }
    out.push_str("</ul>\n");
    out
}

/// XML-safe text (the same five characters as HTML).
fn x(s: &str) -> String {
    esc(s)
}

/// The Atom feed (RFC 4287): one entry per post (its latest update first in the content) and
/// one per planned maintenance in the next 30 days.
pub fn atom(app: &App, posts: &[StatusPost], maintenance: &[crate::core::maintenance::Occurrence], now: i64) -> String {
    let base = app.config.public_url.as_deref().unwrap_or("").trim_end_matches('/').to_string();
    let t = app.shown(now);
    let updated = posts
        .iter()
        .flat_map(|p| p.updates.iter().map(|u| u.at_ms))
        .chain(maintenance.iter().filter_map(|m| m.created.as_ref().map(|c| c.at_ms)))
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<title>Service status</title>\n<id>{base}/status/feed.atom</id>\n<link rel=\"self\" href=\"{base}/status/feed.atom\"/>\n<link href=\"{base}/\"/>\n<updated>{}</updated>\n<author><name>Service status</name></author>\n",
        rfc3339(updated)
    );
    for p in posts {
        let last = p.updates.last().map_or(p.created_ms, |u| u.at_ms);
        let content: String = p
            .updates
            .iter()
            .rev()
            .map(|u| {
                format!("<p><strong>{}</strong> — {}<br>{}</p>", u.status.label(), t.local(u.at_ms), esc(&u.message))
            })
            .collect();
        out.push_str(&format!(
            "<entry>\n<title>{}</title>\n<id>{base}/status/incidents/{id}</id>\n<link href=\"{base}/status/incidents/{id}\"/>\n<published>{}</published>\n<updated>{}</updated>\n<summary>{}</summary>\n<content type=\"html\">{}</content>\n</entry>\n",
            x(&format!("{} ({})", p.title, p.status.label())),
            rfc3339(p.created_ms),
            rfc3339(last),
            x(&format!("{} · affects {}", p.impact.label(), affected(&p.services))),
            x(&content),
            id = p.id
        ));
    }
    for m in maintenance {
        let phase = if now < m.start_ms {
            "scheduled"
        } else if now < m.end_ms {
            "in progress"
        } else {
            "completed"
        };
        out.push_str(&format!(
            "<entry>\n<title>{}</title>\n<id>{base}/status/maintenance/{}/{}</id>\n<link href=\"{base}/\"/>\n<updated>{}</updated>\n<summary>{}</summary>\n</entry>\n",
            x(&format!("Maintenance: {} ({phase})", m.name)),
            x(&m.name.replace(' ', "-")),
            m.start_ms,
            rfc3339(m.created.as_ref().map_or(m.start_ms, |c| c.at_ms)),
            x(&format!(
                "{} to {}; affects {}",
                t.local(m.start_ms),
                t.local(m.end_ms),
                affected(&m.services)
            )),
        ));
    }
    out.push_str("</feed>\n");
    out
}

async fn feed(State(app): State<Arc<App>>) -> Response {
    let now = now_ms();
    let found = blocking(&app, move |a| {
        let posts = a.store.posts(Some((now - 90 * DAY_MS, now + 1)), 100)?;
        let created = a.store.maintenance(now - DAY_MS, now + 30 * DAY_MS)?;
        let m = crate::core::maintenance::occurrences_in(
            Some(&a.config),
            &a.config.maintenance,
            &created,
            now - DAY_MS,
            now + 30 * DAY_MS,
        );
        Ok((posts, m))
    })
    .await;
    match found {
        Ok((posts, m)) => {
            ([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], atom(&app, &posts, &m, now))
                .into_response()
        }
        Err(r) => r,
    }
}

fn subscribe_body(app: &App, note: &str) -> String {
    let mut services = String::new();
    for name in app.config.services.keys() {
        services.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"service\" value=\"{0}\"> {0}</label><br>\n",
            esc(name.as_str())
        ));
    }
    format!(
        "<p><a href=\"/\">← Status</a></p>\n<h1>Subscribe to updates</h1>\n{note}\
         <form method=\"post\" action=\"/status/subscribe\">\n\
         <p><label for=\"email\">Email address</label><br><input id=\"email\" name=\"email\" type=\"email\" required size=\"40\"></p>\n\
         <fieldset><legend>Services (none ticked: all)</legend>\n{services}</fieldset>\n\
         <p><button type=\"submit\">Subscribe</button></p>\n</form>\n\
         <p class=\"muted\">We send a confirmation link first; nothing else until you confirm. Every mail has a one-click unsubscribe link.</p>\n"
    )
}

async fn subscribe_form(State(app): State<Arc<App>>) -> Response {
    if app.config.subscriptions.is_none() {
        return page(StatusCode::NOT_FOUND, "Not offered", "<p>Subscriptions are not offered here.</p>");
    }
    page(StatusCode::OK, "Subscribe", &subscribe_body(&app, ""))
}

async fn subscribe(
    State(app): State<Arc<App>>,
    client: Option<Extension<ClientAddr>>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(cfg) = app.config.subscriptions.as_ref().map(|c| c.get_ref()) else {
        return page(StatusCode::NOT_FOUND, "Not offered", "<p>Subscriptions are not offered here.</p>");
    };
    let now = now_ms();
    if !app.subscribe_limits.admit(client.map(|c| c.0 .0), cfg.per_address_per_hour, cfg.total_per_hour, now) {
        let mut r = page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "<p>Too many subscription requests; please try again later.</p>",
        );
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("600"));
        return r;
    }
    // Read as pairs: the `service` field repeats, once per ticked box.
    let mut email = String::new();
    let mut services = Vec::new();
    for (k, v) in fields {
        match k.as_str() {
            "email" => email = v,
            "service" => services.push(v),
            _ => {}
        }
    }
    let outcome = blocking(&app, move |a| {
        Ok(crate::notify::status_posts::subscribe_email(a.store.as_ref(), &a.config, &email, &services, now)
            .map_err(|e| e.to_string()))
    })
    .await;
    app.outbox_wakeup.notify_one();
    match outcome {
        Ok(Ok(())) => page(
            StatusCode::ACCEPTED,
            "Check your mail",
            "<p><a href=\"/\">← Status</a></p>\n<h1>Check your mail</h1>\n<p id=\"subscribed\">If the address can receive mail, a confirmation link is on its way. Nothing else is sent until it is confirmed.</p>\n",
        ),
        Ok(Err(why)) => page(
            StatusCode::BAD_REQUEST,
            "Subscribe",
            &subscribe_body(&app, &format!("<p id=\"problem\">{}</p>\n", esc(&why))),
        ),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

fn button_page(title: &str, action: &str, token: &str, text: &str, button: &str) -> Response {
    page(
        StatusCode::OK,
        title,
        &format!(
            "<h1>{}</h1>\n<p>{}</p>\n<form method=\"post\" action=\"{action}?token={}\"><button type=\"submit\">{}</button></form>\n",
            esc(title),
            esc(text),
            esc(token),
            esc(button)
        ),
    )
}

async fn confirm_page(Query(q): Query<TokenQuery>) -> Response {
    button_page(
        "Confirm your subscription",
        "/status/subscriptions/confirm",
        &q.token,
        "Press the button to start receiving status updates.",
        "Confirm",
    )
}

async fn confirm(State(app): State<Arc<App>>, Query(q): Query<TokenQuery>) -> Response {
    let now = now_ms();
    let token = q.token.clone();
    match blocking(&app, move |a| crate::notify::status_posts::confirm(a.store.as_ref(), &token, now)).await {
        Ok(Some(_)) => page(
            StatusCode::OK,
            "Subscribed",
            "<h1>Subscribed</h1>\n<p id=\"confirmed\">You will be told of incidents and maintenance. Every mail has an unsubscribe link.</p>\n",
        ),
        Ok(None) => page(StatusCode::NOT_FOUND, "Unknown link", "<p>This link is not (or no longer) valid.</p>"),
        Err(r) => r,
    }
}

async fn unsubscribe_page(Query(q): Query<TokenQuery>) -> Response {
    button_page(
        "Unsubscribe",
        "/status/unsubscribe",
        &q.token,
        "Press the button to receive no more status updates.",
        "Unsubscribe",
    )
}

/// Unsubscribes: the page's button, or a mail client's one-click post (RFC 8058).
async fn unsubscribe(State(app): State<Arc<App>>, Query(q): Query<TokenQuery>) -> Response {
    let now = now_ms();
    let token = q.token.clone();
    match blocking(&app, move |a| crate::notify::status_posts::unsubscribe(a.store.as_ref(), &token, now)).await {
        Ok(Some(_)) => page(
            StatusCode::OK,
            "Unsubscribed",
            "<h1>Unsubscribed</h1>\n<p id=\"unsubscribed\">You will receive no more status updates.</p>\n",
        ),
        Ok(None) => page(StatusCode::NOT_FOUND, "Unknown link", "<p>This link is not (or no longer) valid.</p>"),
        Err(r) => r,
    }
}
