//! Who may read what: the status page and badges can be public, `/metrics` can be, health and
//! the agents' endpoints (which carry their own token) are; everything else needs an API token,
//! as a bearer token or, from a browser, as the password of HTTP Basic authentication with the
//! token's name as user. Form posts from a browser must come from the collector's own pages.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use std::sync::Arc;
use vakt_config::collector::{AccessConfig, Scope};

use crate::app::App;
use crate::auth::{bearer, constant_time_eq};

/// What a request needs before it is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Served to anyone (health, or a part the config makes public).
    Nothing,
    /// The handler checks an agent token itself.
    AgentToken,
    /// An API token (bearer or Basic).
    ApiToken,
}

/// What `path` needs, as `access` says. Pure.
pub fn need(path: &str, access: &AccessConfig) -> Need {
    let public = |yes: bool| if yes { Need::Nothing } else { Need::ApiToken };
    if path == "/healthz" || path == "/readyz" {
        return Need::Nothing;
    }
    // Heartbeat pings carry their secret in the path; the handler checks it.
    if path == "/api/v1/ingest"
        || (path.starts_with("/api/v1/agents/") && path.ends_with("/checks"))
        || path.starts_with("/ping/")
    {
        return Need::AgentToken;
    }
    if path == "/" || path.starts_with("/badge/") || path == "/style.css" || path.starts_with("/status/") {
        return public(access.public_status_page);
    }
    if path == "/metrics" {
        return public(access.public_metrics);
    }
    Need::ApiToken
}

/// The scope a request needs of its API token. Pure. Reading needs `read`; acknowledging,
/// notes, resolving and silences need `oncall`; maintenance windows and anything else that
/// writes need `admin`.
pub fn required_scope(method: &Method, path: &str) -> Scope {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Scope::Read;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let incident_action =
        |s: &[&str]| matches!(s, ["incidents", id, "ack" | "notes" | "resolve"] if id.parse::<i64>().is_ok());
    match segments.as_slice() {
        ["api", "v1", rest @ ..] if incident_action(rest) => Scope::Oncall,
        ["api", "v1", "silences", ..] => Scope::Oncall,
        // Telling customers is the on-call engineer's job; adding webhooks is an admin's.
        ["api", "v1", "status", "incidents", ..] | ["status-posts", ..] => Scope::Oncall,
        s if incident_action(s) => Scope::Oncall,
        _ => Scope::Admin,
    }
}

/// The API token's name behind a request: `Authorization: Bearer <token>`, or `Basic` with the
/// token's name as user and the token as password.
pub fn caller(app: &App, headers: &HeaderMap) -> Result<String, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err("this needs an API token (Authorization: Bearer <token>)");
    };
    if let Some(token) = bearer(Some(value)) {
        return app
            .api_tokens
            .agent_for(token)
            .map(str::to_string)
            .ok_or("the token is not one of the collector's api_tokens");
    }
    let (user, password) = basic(value).ok_or("Authorization is neither Bearer nor Basic")?;
    match app.api_tokens.agent_for(&password) {
        Some(name) if constant_time_eq(name.as_bytes(), user.as_bytes()) => Ok(name.to_string()),
        _ => Err("user and password are not an API token's name and the token"),
    }
}

/// The password of a request's `Basic` credentials (an audience page's token).
pub fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    basic(value).map(|(_, password)| password)
}

/// User and password of a `Basic` Authorization header value.
fn basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A form post whose `Origin` (or `Referer`) names another site: refused, so a page elsewhere
/// cannot make a logged-in browser acknowledge incidents. Clients that send neither (curl,
/// scripts with a bearer token) are not browsers and pass.
pub fn cross_site(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|o| o.to_str().ok())
        .filter(|o| *o != "null");
    let Some(origin) = origin else {
        return headers.get(header::ORIGIN).is_some(); // "Origin: null" is a sandboxed or opaque page
    };
    let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or_default();
    authority != host
}

fn unauthorized(reason: &str) -> Response {
    let mut r =
        (StatusCode::UNAUTHORIZED, axum::Json(vakt_config::wire::ErrorBody { error: reason.into() })).into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Vakt\", charset=\"UTF-8\""));
    r
}

/// The middleware: serves what needs nothing, asks for a token otherwise.
pub async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    // An audience's status page checks its own token (or has none).
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let audience = crate::core::audience::page_for(&app.audience_pages, req.uri().path(), host).is_some();
    if !audience && need(req.uri().path(), &app.config.access) == Need::ApiToken {
        let name = match caller(&app, req.headers()) {
            Ok(name) => name,
            Err(reason) => return unauthorized(reason),
        };
        let needed = required_scope(req.method(), req.uri().path());
        let has = app.scope_of(&name);
        if has < needed {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(vakt_config::wire::ErrorBody {
                    error: format!(
                        "token {name:?} has scope {}; {} {} needs scope {}",
                        has.as_str(),
                        req.method(),
                        req.uri().path(),
                        needed.as_str()
                    ),
                }),
            )
                .into_response();
        }
        if req.method() == Method::POST && cross_site(req.headers()) {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(vakt_config::wire::ErrorBody { error: "a form post from another site is refused".into() }),
            )
                .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_config_opens_is_public() {
        let default = AccessConfig::default();
        assert_eq!(need("/", &default), Need::Nothing, "the status page is public by default");
        assert_eq!(need("/badge/shop/status.svg", &default), Need::Nothing);
        assert_eq!(need("/healthz", &default), Need::Nothing);
        assert_eq!(need("/metrics", &default), Need::ApiToken, "metrics need a token by default");
        assert_eq!(need("/api/v1/incidents", &default), Need::ApiToken);
        assert_eq!(need("/incidents/3", &default), Need::ApiToken);
        assert_eq!(need("/sla", &default), Need::ApiToken);
        assert_eq!(need("/api/v1/ingest", &default), Need::AgentToken);
        assert_eq!(need("/api/v1/agents/edge/checks", &default), Need::AgentToken);
        assert_eq!(need("/api/v1/agents", &default), Need::ApiToken);
        let closed = AccessConfig { public_status_page: false, public_metrics: true, status_page_details: false };
        assert_eq!(need("/", &closed), Need::ApiToken);
        assert_eq!(need("/badge/shop/status.svg", &closed), Need::ApiToken);
        assert_eq!(need("/metrics", &closed), Need::Nothing);
    }

    #[test]
    fn each_write_needs_its_scope() {
        let post = Method::POST;
        assert_eq!(required_scope(&Method::GET, "/api/v1/maintenance"), Scope::Read);
        assert_eq!(required_scope(&Method::GET, "/incidents/3"), Scope::Read);
        assert_eq!(required_scope(&post, "/api/v1/incidents/3/ack"), Scope::Oncall);
        assert_eq!(required_scope(&post, "/api/v1/incidents/3/notes"), Scope::Oncall);
        assert_eq!(required_scope(&post, "/incidents/3/resolve"), Scope::Oncall, "the page's form");
        assert_eq!(required_scope(&post, "/api/v1/silences"), Scope::Oncall);
        assert_eq!(required_scope(&Method::DELETE, "/api/v1/silences/4"), Scope::Oncall);
        assert_eq!(required_scope(&post, "/api/v1/maintenance"), Scope::Admin);
        assert_eq!(required_scope(&post, "/api/v1/incidents/x/ack"), Scope::Admin, "anything unforeseen: admin");
        assert_eq!(required_scope(&post, "/api/v1/anything-new"), Scope::Admin);
        assert!(Scope::Read < Scope::Oncall && Scope::Oncall < Scope::Admin);
    }

    #[test]
    fn basic_credentials_decode() {
        // "alice:s3cret"
        assert_eq!(basic("Basic YWxpY2U6czNjcmV0"), Some(("alice".into(), "s3cret".into())));
        assert_eq!(basic("Bearer YWxpY2U6czNjcmV0"), None);
        assert_eq!(basic("Basic !!!"), None);
    }

    #[test]
    fn form_posts_from_other_sites_are_refused() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
            }
            m
        };
        assert!(!cross_site(&h(&[("host", "vakt:8427"), ("origin", "http://vakt:8427")])));
        assert!(!cross_site(&h(&[("host", "vakt:8427"), ("referer", "https://vakt:8427/incidents/3")])));
        assert!(!cross_site(&h(&[("host", "vakt:8427")])), "curl sends neither");
        assert!(cross_site(&h(&[("host", "vakt:8427"), ("origin", "https://evil.example")])));
        assert!(cross_site(&h(&[("host", "vakt:8427"), ("origin", "null")])));
    }
}
