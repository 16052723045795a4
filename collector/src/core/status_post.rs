//! What people tell customers on the status page: a post (title, affected services and how
//! badly, a stream of updates each with a status and a message) and who is told of it
//! (subscribers). Posts are written by people; an automatic incident can prefill one, and an
//! update never touches the internal incident. Pure: validation, the post's state after an
//! update, message templates, which subscribers an update reaches.

use serde::{Deserialize, Serialize};

/// Where a post stands, as its last update says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl PostStatus {
    pub const ALL: [PostStatus; 4] =
        [PostStatus::Investigating, PostStatus::Identified, PostStatus::Monitoring, PostStatus::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Investigating => "investigating",
            PostStatus::Identified => "identified",
            PostStatus::Monitoring => "monitoring",
            PostStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Result<PostStatus, String> {
        PostStatus::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("status {s:?} is not one of investigating, identified, monitoring, resolved"))
    }

    /// "Investigating", as a heading shows it.
    pub fn label(self) -> &'static str {
        match self {
            PostStatus::Investigating => "Investigating",
            PostStatus::Identified => "Identified",
            PostStatus::Monitoring => "Monitoring",
            PostStatus::Resolved => "Resolved",
        }
    }
}

/// How badly the post's services are affected, as customers read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    Degraded,
    PartialOutage,
    MajorOutage,
}

impl Impact {
    pub fn as_str(self) -> &'static str {
        match self {
            Impact::Degraded => "degraded",
            Impact::PartialOutage => "partial_outage",
            Impact::MajorOutage => "major_outage",
        }
    }

    pub fn parse(s: &str) -> Result<Impact, String> {
        [Impact::Degraded, Impact::PartialOutage, Impact::MajorOutage]
            .into_iter()
            .find(|i| i.as_str() == s)
            .ok_or_else(|| format!("impact {s:?} is not one of degraded, partial_outage, major_outage"))
    }

    /// "Partial outage".
    pub fn label(self) -> &'static str {
        match self {
            Impact::Degraded => "Degraded performance",
            Impact::PartialOutage => "Partial outage",
            Impact::MajorOutage => "Major outage",
        }
    }
}

/// One update of a post.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PostUpdate {
    pub id: i64,
    pub status: PostStatus,
    /// Plain text as written; escaped wherever it is shown.
    pub message: String,
    pub at_ms: i64,
    /// The API token's name that wrote it ("cli" from the command line).
    pub by: String,
}

/// A status page post with its updates, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusPost {
    pub id: i64,
    pub title: String,
    pub impact: Impact,
    pub services: Vec<String>,
    /// The internal incident it was written from, if any.
    pub incident_id: Option<i64>,
    pub status: PostStatus,
    pub created_ms: i64,
    pub resolved_ms: Option<i64>,
    /// Written after resolution: what happened and what will change.
    pub postmortem: Option<String>,
    pub updates: Vec<PostUpdate>,
}

impl StatusPost {
    pub fn is_open(&self) -> bool {
        self.status != PostStatus::Resolved
    }

    pub fn latest(&self) -> Option<&PostUpdate> {
        self.updates.last()
    }

    /// Whether the post was open at some time during `[from_ms, to_ms)`.
    pub fn overlaps(&self, from_ms: i64, to_ms: i64) -> bool {
        self.created_ms < to_ms && self.resolved_ms.is_none_or(|r| r >= from_ms)
    }
}

/// A new post as people ask for it (API, form, CLI).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPost {
    #[serde(default)]
    pub title: String,
    pub impact: Option<String>,
    #[serde(default)]
    pub services: Vec<String>,
    /// Prefill from this incident: its services, its start, a title from its subject.
    pub incident_id: Option<i64>,
    /// The first update's status (default investigating) and message.
    pub status: Option<String>,
    #[serde(default)]
    pub message: String,
    /// Use `[status_templates.NAME]` for the message (and the title when none is given).
    pub template: Option<String>,
}

/// An update as people ask for it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUpdate {
    pub status: String,
    #[serde(default)]
    pub message: String,
    pub template: Option<String>,
    /// With a "resolved" update: resolve the post's internal incident too (otherwise posting
    /// never touches it).
    #[serde(default)]
    pub resolve_incident: bool,
}

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 10_000;

/// Checks a title or message: not empty, not too long, no control characters but newlines.
pub fn check_text(what: &str, text: &str, max: usize) -> Result<String, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if t.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(format!("{what} has control characters"));
    }
    Ok(t.to_string())
}

/// Fills `{service}` (the first affected service) and `{services}` (all) in a template.
pub fn fill(template: &str, services: &[String]) -> String {
    let first = services.first().map(String::as_str).unwrap_or("our service");
    let all = if services.is_empty() { "our services".to_string() } else { services.join(", ") };
    template.replace("{services}", &all).replace("{service}", first)
}

/// The services a post or a window affects, in words: "shop, api", or "all services" for one
/// that names none (it reaches everyone).
pub fn affected(services: &[String]) -> String {
    if services.is_empty() {
        "all services".to_string()
    } else {
        services.join(", ")
    }
}

/// Who a subscription reaches: everything when it names no service, else posts touching one of
/// its services (a post without services touches everyone).
pub fn reaches(subscribed: &[String], post_services: &[String]) -> bool {
    subscribed.is_empty() || post_services.is_empty() || post_services.iter().any(|s| subscribed.contains(s))
}

/// A subscriber: an email address (confirmed by its owner) or a webhook (made by an admin).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Subscriber {
    pub id: i64,
    /// "email" or "webhook".
    pub kind: String,
    /// The address or URL. Never shown publicly.
    #[serde(skip_serializing)]
    pub address: String,
    /// Empty: every service.
    pub services: Vec<String>,
    /// The secret in the confirmation and unsubscribe links (and a webhook's signing key).
    #[serde(skip_serializing)]
    pub token: String,
    pub created_ms: i64,
    pub confirmed_ms: Option<i64>,
    pub unsubscribed_ms: Option<i64>,
    /// When a message to it was last given up after every attempt (a failing address).
    pub failed_ms: Option<i64>,
}

impl Subscriber {
    pub fn active(&self) -> bool {
        self.confirmed_ms.is_some() && self.unsubscribed_ms.is_none()
    }
}

/// An email address a subscriber may give: one mailbox, no display name, nothing a mail
/// header could be split on.
pub fn check_address(address: &str) -> Result<String, String> {
    let a = address.trim();
    if a.len() > 254 || a.is_empty() {
        return Err("the address is empty or too long".into());
    }
    if a.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"' | '\\')) {
        return Err("the address has characters an email address does not".into());
    }
    let Some((local, domain)) = a.rsplit_once('@') else { return Err("the address has no @".into()) };
    if local.is_empty() || domain.is_empty() || !domain.contains('.') || local.contains('@') {
        return Err("the address is not name@domain".into());
    }
    Ok(a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_impacts_parse_as_written() {
        assert_eq!(PostStatus::parse("monitoring"), Ok(PostStatus::Monitoring));
        assert!(PostStatus::parse("fixed").unwrap_err().contains("investigating, identified"));
        assert_eq!(Impact::parse("partial_outage"), Ok(Impact::PartialOutage));
        assert!(Impact::parse("down").is_err());
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(check_text("title", "  Shop slow \n", 200), Ok("Shop slow".into()));
        assert!(check_text("title", "   ", 200).is_err());
        assert!(check_text("title", &"x".repeat(201), 200).is_err());
        assert!(check_text("message", "a\u{0}b", 200).is_err());
        assert!(check_text("message", "line one\nline two", 200).is_ok());
    }

    #[test]
    fn templates_name_the_services() {
        let t = "We are investigating reduced performance of {service}.";
        assert_eq!(fill(t, &["shop".into()]), "We are investigating reduced performance of shop.");
        assert_eq!(fill("{services} affected", &["shop".into(), "api".into()]), "shop, api affected");
        assert_eq!(fill("{service} down", &[]), "our service down");
    }

    #[test]
    fn a_subscription_reaches_the_posts_of_its_services() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(reaches(&s(&[]), &s(&["shop"])), "no service named: everything");
        assert!(reaches(&s(&["shop"]), &s(&["shop", "api"])));
        assert!(!reaches(&s(&["billing"]), &s(&["shop"])));
        assert!(reaches(&s(&["billing"]), &s(&[])), "a post about no service in particular reaches all");
    }

    #[test]
    fn addresses_that_could_split_a_header_are_refused() {
        assert_eq!(check_address(" ops@example.com "), Ok("ops@example.com".into()));
        for bad in [
            "ops@example.com\r\nBcc: all@example.com",
            "ops@example.com, boss@example.com",
            "Ops <ops@example.com>",
            "ops",
            "ops@localhost",
            "@example.com",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_post_overlaps_the_days_it_was_open() {
        let post = StatusPost {
            id: 1,
            title: "t".into(),
            impact: Impact::Degraded,
            services: vec![],
            incident_id: None,
            status: PostStatus::Resolved,
            created_ms: 100,
            resolved_ms: Some(200),
            postmortem: None,
            updates: vec![],
        };
        assert!(post.overlaps(0, 101) && post.overlaps(150, 160) && post.overlaps(200, 300));
        assert!(!post.overlaps(0, 100) && !post.overlaps(201, 300));
    }
}
