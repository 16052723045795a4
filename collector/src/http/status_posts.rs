//! Status page posts for people with a token: the API (`/api/v1/status/...`: posts, updates,
//! postmortems, webhook subscribers, the subscriber outbox) and the on-call pages' forms
//! (`/status-posts`: write a post, from an incident or a template; add updates). Each write
//! goes through `notify::status_posts`, which queues what subscribers are told.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use std::sync::Arc;

use crate::app::App;
use crate::core::status_post::{NewPost, NewUpdate, PostStatus, StatusPost};
use crate::core::time::now_ms;
use crate::http::api::error;
use crate::http::oncall::{html, problem, who};
use crate::http::views::{esc, layout, time};
use crate::notify::status_posts::{self as posts, PostError};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/status/incidents", get(list).post(create))
        .route("/api/v1/status/incidents/{id}", get(one))
        .route("/api/v1/status/incidents/{id}/updates", post(add_update))
        .route("/api/v1/status/incidents/{id}/postmortem", post(set_postmortem))
        .route("/api/v1/status/subscribers", get(list_subscribers).post(add_webhook))
        .route("/api/v1/status/messages", get(list_messages))
        .route("/status-posts", get(page_list).post(form_create))
        .route("/status-posts/{id}", get(page_one))
        .route("/status-posts/{id}/updates", post(form_update))
        .route("/status-posts/{id}/postmortem", post(form_postmortem))
}

/// The status an error answers with: the request's fault, a missing post, or ours.
fn status_of(e: &PostError) -> StatusCode {
    match e {
        PostError::Invalid(_) => StatusCode::BAD_REQUEST,
        PostError::NotFound(_) => StatusCode::NOT_FOUND,
        PostError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        PostError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn answer(result: Result<StatusPost, PostError>, created: bool) -> Response {
    match result {
        Ok(p) if created => (StatusCode::CREATED, Json(p)).into_response(),
        Ok(p) => Json(p).into_response(),
        Err(e) => error(status_of(&e), e.to_string()),
    }
}

async fn run<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> Result<T, PostError> + Send + 'static,
) -> Result<T, PostError> {
    let a = app.clone();
    let result =
        tokio::task::spawn_blocking(move || f(&a)).await.unwrap_or_else(|e| Err(PostError::Failed(e.to_string())));
    // What was written may have queued messages for subscribers.
    app.outbox_wakeup.notify_one();
    result
}

async fn list(State(app): State<Arc<App>>) -> Response {
    match run(&app, |a| Ok(a.store.posts(None, 200)?)).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn one(State(app): State<Arc<App>>, Path(id): Path<i64>) -> Response {
    match run(&app, move |a| Ok(a.store.post(id)?)).await {
        Ok(Some(p)) => Json(p).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("there is no status post {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn create(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let by = who(&app, &headers);
    let req: NewPost = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not a status post: {e}")),
    };
    answer(run(&app, move |a| posts::create(a.store.as_ref(), &a.config, req, &by, now_ms())).await, true)
}

async fn add_update(State(app): State<Arc<App>>, Path(id): Path<i64>, headers: HeaderMap, body: Bytes) -> Response {
    let by = who(&app, &headers);
    let req: NewUpdate = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not an update: {e}")),
    };
    answer(run(&app, move |a| posts::update(a.store.as_ref(), &a.config, id, req, &by, now_ms())).await, true)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Postmortem {
    text: String,
}

async fn set_postmortem(State(app): State<Arc<App>>, Path(id): Path<i64>, body: Bytes) -> Response {
    let req: Postmortem = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not {{\"text\": ...}}: {e}")),
    };
    answer(run(&app, move |a| posts::postmortem(a.store.as_ref(), id, &req.text)).await, false)
}

async fn list_subscribers(State(app): State<Arc<App>>) -> Response {
    match run(&app, |a| Ok(a.store.subscribers()?)).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
    #[serde(default)]
    services: Vec<String>,
}

/// An admin adds a webhook subscriber; the answer carries its signing secret, once.
async fn add_webhook(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let req: NewWebhook = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body is not {{\"url\": ...}}: {e}")),
    };
    match run(&app, move |a| posts::add_webhook(a.store.as_ref(), &a.config, &req.url, &req.services, now_ms())).await {
        Ok(s) => (
            StatusCode::CREATED,
            Json(serde_json::json!({
                "id": s.id,
                "kind": s.kind,
                "services": s.services,
                "signing_secret": s.token,
                "signature": "X-Vakt-Signature: sha256=HMAC-SHA256(signing_secret, body), hex",
            })),
        )
            .into_response(),
        Err(e) => error(status_of(&e), e.to_string()),
    }
}

async fn list_messages(State(app): State<Arc<App>>) -> Response {
    match run(&app, |a| Ok(a.store.subscriber_messages(500)?)).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

// ------------------------------------------------------------------ on-call pages

#[derive(Deserialize)]
struct PostForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    impact: String,
    #[serde(default)]
    services: String,
    #[serde(default)]
    incident_id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    resolve_incident: String,
}

fn some(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

async fn form_create(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<PostForm>) -> Response {
    let by = who(&app, &headers);
    let incident_id = match some(&f.incident_id).map(|i| i.parse::<i64>()) {
        None => None,
        Some(Ok(i)) => Some(i),
        Some(Err(_)) => return problem(StatusCode::BAD_REQUEST, &by, "incident_id is not a number"),
    };
    let req = NewPost {
        title: f.title,
        impact: some(&f.impact),
        services: f.services.split(',').filter_map(some).collect(),
        incident_id,
        status: some(&f.status),
        message: f.message,
        template: some(&f.template),
    };
    let who_ = by.clone();
    back_to_post(run(&app, move |a| posts::create(a.store.as_ref(), &a.config, req, &who_, now_ms())).await, &by)
}

/// After a form's write: back to the post's page, or what went wrong.
fn back_to_post(result: Result<StatusPost, PostError>, by: &str) -> Response {
    match result {
        Ok(p) => Redirect::to(&format!("/status-posts/{}", p.id)).into_response(),
        Err(e) => problem(status_of(&e), by, &e.to_string()),
    }
}

async fn form_update(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(f): Form<PostForm>,
) -> Response {
    let by = who(&app, &headers);
    let req = NewUpdate {
        status: f.status,
        message: f.message,
        template: some(&f.template),
        resolve_incident: f.resolve_incident == "on",
    };
    let who_ = by.clone();
    back_to_post(run(&app, move |a| posts::update(a.store.as_ref(), &a.config, id, req, &who_, now_ms())).await, &by)
}

async fn form_postmortem(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(f): Form<PostForm>,
) -> Response {
    let by = who(&app, &headers);
    back_to_post(run(&app, move |a| posts::postmortem(a.store.as_ref(), id, &f.message)).await, &by)
}

/// The template and status pickers every form shares.
fn pickers(app: &App, status: PostStatus) -> String {
    let mut out = String::from("<label for=\"status\">Status</label> <select id=\"status\" name=\"status\">");
    for s in PostStatus::ALL {
        out.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            s.as_str(),
            if s == status { " selected" } else { "" },
            s.label()
        ));
    }
    out.push_str("</select>\n");
    if !app.config.status_templates.is_empty() {
        out.push_str("<label for=\"template\">Template</label> <select id=\"template\" name=\"template\"><option value=\"\">none: my own words</option>");
        for (name, t) in &app.config.status_templates {
            out.push_str(&format!(
                "<option value=\"{0}\" title=\"{1}\">{0}</option>",
                esc(name.as_str()),
                esc(t.message.get_ref())
            ));
        }
        out.push_str("</select>\n");
    }
    out
}

/// The form that writes a post, prefilled from incident `incident` when given.
pub fn new_post_form(app: &App, incident: Option<(i64, &[String])>) -> String {
    let (id, services) = incident.map_or((String::new(), String::new()), |(i, s)| (i.to_string(), s.join(", ")));
    format!(
        "<form method=\"post\" action=\"/status-posts\" class=\"status-post\">\n\
         <input type=\"hidden\" name=\"incident_id\" value=\"{id}\">\n\
         <p><label for=\"post-title\">Title (for customers)</label><br><input id=\"post-title\" name=\"title\" size=\"60\" placeholder=\"Problems with {services}\"></p>\n\
         <p><label for=\"post-services\">Affected services (comma-separated)</label><br><input id=\"post-services\" name=\"services\" value=\"{services}\" size=\"60\"></p>\n\
         <p><label for=\"post-impact\">Impact</label> <select id=\"post-impact\" name=\"impact\"><option value=\"degraded\">Degraded performance</option><option value=\"partial_outage\" selected>Partial outage</option><option value=\"major_outage\">Major outage</option></select>\n\
         {}</p>\n\
         <p><label for=\"post-message\">Message</label><br><textarea id=\"post-message\" name=\"message\" rows=\"3\" cols=\"60\"></textarea></p>\n\
         <p><button type=\"submit\">Post to the status page</button> <span class=\"muted\">Subscribers are told. The incident itself is not changed.</span></p>\n</form>\n",
        pickers(app, PostStatus::Investigating),
        services = esc(&services),
    )
}

async fn page_list(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let by = who(&app, &headers);
    let now = now_ms();
    let list = match run(&app, |a| Ok(a.store.posts(None, 100)?)).await {
        Ok(l) => l,
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, &by, &e.to_string()),
    };
    let t = app.shown(now);
    let mut body = crate::http::status_public::post_list(&list, "/status-posts", &t, "No posts yet.");
    body.push_str("<h2>Write a post</h2>\n");
    body.push_str(&new_post_form(&app, None));
    html(StatusCode::OK, layout("Status page posts", &by, &body))
}

async fn page_one(State(app): State<Arc<App>>, Path(id): Path<i64>, headers: HeaderMap) -> Response {
    let by = who(&app, &headers);
    let p = match run(&app, move |a| Ok(a.store.post(id)?)).await {
        Ok(Some(p)) => p,
        Ok(None) => return problem(StatusCode::NOT_FOUND, &by, &format!("There is no status post {id}.")),
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, &by, &e.to_string()),
    };
    let t = app.shown(now_ms());
    let mut body = format!(
        "<p>{} · {} · affects {}{} · <a href=\"/status/incidents/{}\">as customers see it</a></p>\n<ol id=\"updates\" reversed>\n",
        p.status.label(),
        p.impact.label(),
        esc(&crate::core::status_post::affected(&p.services)),
        p.incident_id.map(|i| format!(" · from <a href=\"/incidents/{i}\">incident #{i}</a>")).unwrap_or_default(),
        p.id
    );
    for u in p.updates.iter().rev() {
        body.push_str(&format!(
            "<li><strong>{}</strong> {} by {}<br>{}</li>\n",
            u.status.label(),
            time(&t, u.at_ms),
            esc(&u.by),
            esc(&u.message)
        ));
    }
    body.push_str("</ol>\n<h2>Add an update</h2>\n");
    body.push_str(&format!(
        "<form method=\"post\" action=\"/status-posts/{}/updates\">\n<p>{}</p>\n<p><label for=\"update-message\">Message</label><br><textarea id=\"update-message\" name=\"message\" rows=\"3\" cols=\"60\"></textarea></p>\n{}<p><button type=\"submit\">Post the update</button></p>\n</form>\n",
        p.id,
        pickers(&app, p.status),
        p.incident_id
            .map(|i| format!("<p><input type=\"checkbox\" id=\"resolve-incident\" name=\"resolve_incident\"> <label for=\"resolve-incident\">With a resolved update, resolve incident #{i} too</label></p>\n"))
            .unwrap_or_default()
    ));
    if !p.is_open() {
        body.push_str(&format!(
            "<h2>Postmortem</h2>\n<form method=\"post\" action=\"/status-posts/{}/postmortem\">\n<p><label for=\"postmortem\">What happened and what will change</label><br><textarea id=\"postmortem\" name=\"message\" rows=\"6\" cols=\"60\">{}</textarea></p>\n<p><button type=\"submit\">Publish the postmortem</button></p>\n</form>\n",
            p.id,
            esc(p.postmortem.as_deref().unwrap_or(""))
        ));
    }
    html(StatusCode::OK, layout(&p.title, &by, &body))
}
