//! Service desks: a ticket per Vakt incident in ServiceNow (Table API, `incident` table) or Jira
//! (Service Management) issues. The ticket is found again by a key stable for the incident's
//! life (ServiceNow's `correlation_id`, a Jira label), so a retry, a restart or a failover
//! between creating it and recording it never makes a second one: every message first looks
//! the ticket up, and only an opening with none creates it.
//!
//! What each event does:
//! - opening (and its repeats): the ticket, created once;
//! - acknowledgement: ServiceNow state In Progress with a work note; a Jira comment;
//! - a person's note in Vakt: a ServiceNow work note; a Jira comment;
//! - resolution: ServiceNow state Resolved with `close_code` and close notes; the Jira
//!   transition named `resolve_transition`, with a comment.

use reqwest::Method;
use serde_json::{json, Value};

use super::paging::said;
use super::paging::{dedup_key, Lifecycle};
use super::payload::Message;
use super::receivers::{refused, unreachable, Receiver, Retry, SendError};

/// A service desk receiver's settings.
#[derive(Clone, Debug)]
pub struct Desk {
    pub user: String,
    pub password: String,
    pub project: String,
    pub issue_type: String,
    pub resolve_transition: String,
    pub close_code: String,
    /// Field templates that override Vakt's own.
    pub fields: std::collections::BTreeMap<String, String>,
    /// Each service's owner (the ServiceNow assignment group).
    pub owners: std::collections::BTreeMap<String, String>,
}

/// ServiceNow's impact and urgency for Vakt's priority, as its default priority matrix reads
/// them back: P1 = 1/1, P2 = 1/2, P3 = 2/2, P4 = 2/3, P5 = 3/3.
pub fn impact_urgency(priority: &str) -> (&'static str, &'static str) {
    match priority {
        "P1" => ("1", "1"),
        "P2" => ("1", "2"),
        "P3" => ("2", "2"),
        "P4" => ("2", "3"),
        _ => ("3", "3"),
    }
}

/// Jira's priority names for Vakt's priority.
pub fn jira_priority(priority: &str) -> &'static str {
    match priority {
        "P1" => "Highest",
        "P2" => "High",
        "P3" => "Medium",
        "P4" => "Low",
        _ => "Lowest",
    }
}

/// What the event means to a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Open,
    Acknowledge,
    Note,
    Resolve,
}

fn step_of(event: &str) -> Step {
    match event {
        "note" => Step::Note,
        e => match Lifecycle::of(e) {
            Lifecycle::Trigger => Step::Open,
            Lifecycle::Acknowledge => Step::Acknowledge,
            Lifecycle::Resolve => Step::Resolve,
        },
    }
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Vakt's fields with the receiver's templates rendered over them.
fn with_templates(
    mut fields: serde_json::Map<String, Value>,
    desk: &Desk,
    m: &Message,
) -> serde_json::Map<String, Value> {
    let ctx = m.template_context();
    let env = minijinja::Environment::new();
    for (name, tpl) in &desk.fields {
        match env.render_str(tpl, &ctx) {
            Ok(text) if text.trim().is_empty() => {
                fields.remove(name);
            }
            Ok(text) => {
                let value = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
                    _ => Value::String(text),
                };
                fields.insert(name.clone(), value);
            }
            Err(e) => {
                tracing::warn!(receiver = %m.receiver, field = %name, error = %e, "field template failed; left out")
            }
        }
    }
    fields
}

/// The body of a new ServiceNow incident.
pub fn servicenow_ticket(m: &Message, desk: &Desk) -> Value {
    let i = &m.incident;
    let (impact, urgency) = impact_urgency(&i.priority);
    let mut f = serde_json::Map::new();
    f.insert("short_description".into(), json!(cut(&m.title, 160)));
    f.insert("description".into(), json!(m.text));
    f.insert("impact".into(), json!(impact));
    f.insert("urgency".into(), json!(urgency));
    f.insert("correlation_id".into(), json!(dedup_key(i.id)));
    f.insert("correlation_display".into(), json!("Vakt"));
    if let Some(service) = m.services.first() {
        f.insert("cmdb_ci".into(), json!(service));
        if let Some(owner) = desk.owners.get(service) {
            f.insert("assignment_group".into(), json!(owner));
        }
    }
    Value::Object(with_templates(f, desk, m))
}

/// The fields of a new Jira issue.
pub fn jira_issue(m: &Message, desk: &Desk) -> Value {
    let i = &m.incident;
    let mut f = serde_json::Map::new();
    f.insert("project".into(), json!({ "key": desk.project }));
    f.insert("issuetype".into(), json!({ "name": desk.issue_type }));
    f.insert("summary".into(), json!(cut(&m.title, 255)));
    f.insert("description".into(), json!(m.text));
    f.insert("labels".into(), json!(["vakt", dedup_key(i.id)]));
    f.insert("priority".into(), json!({ "name": jira_priority(&i.priority) }));
    json!({ "fields": with_templates(f, desk, m) })
}

/// One request to the desk's API with Basic authentication: the JSON answer, or why not (see
/// [`refused`]).
async fn call(
    http: &reqwest::Client,
    r: &Receiver,
    desk: &Desk,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, SendError> {
    let mut req = http
        .request(method, url)
        .basic_auth(&desk.user, Some(&desk.password))
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(|e| unreachable(r, &e))?;
    if !resp.status().is_success() {
        return Err(refused(r, resp).await);
    }
    let text = resp.text().await.unwrap_or_default();
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A ticket that should exist by now does not (its opening is not delivered yet): try later.
fn no_ticket(r: &Receiver, key: &str) -> SendError {
    SendError::from(format!("{}: no ticket for {key} yet", r.name))
}

/// Delivers one message to a service desk; `Some("ticket X")` when it opened or found one.
pub async fn send(http: &reqwest::Client, r: &Receiver, desk: &Desk, m: &Message) -> Result<Option<String>, SendError> {
    match r.kind {
        vakt_config::notify::ReceiverKind::Jira => jira(http, r, desk, m).await,
        _ => servicenow(http, r, desk, m).await,
    }
}

async fn servicenow(
    http: &reqwest::Client,
    r: &Receiver,
    desk: &Desk,
    m: &Message,
) -> Result<Option<String>, SendError> {
    let base = r.url.trim_end_matches('/');
    let key = dedup_key(m.incident.id);
    let table = format!("{base}/api/now/table/incident");
    let found = call(
        http,
        r,
        desk,
        Method::GET,
        &format!("{table}?sysparm_query=correlation_id%3D{key}&sysparm_fields=sys_id%2Cnumber&sysparm_limit=1"),
        None,
    )
    .await?;
    let existing = found["result"].as_array().and_then(|a| a.first()).cloned();
    let number = |v: &Value| v["number"].as_str().unwrap_or_default().to_string();
    let step = step_of(&m.event);
    let Some(ticket) = existing else {
        if step != Step::Open {
            return Err(no_ticket(r, &key));
        }
        let created = call(
            http,
            r,
            desk,
            Method::POST,
            &format!("{table}?sysparm_input_display_value=true"),
            Some(&servicenow_ticket(m, desk)),
        )
        .await?;
        return Ok(Some(format!("ticket {}", number(&created["result"]))));
    };
    let sys_id = ticket["sys_id"].as_str().unwrap_or_default();
    let update = match step {
        Step::Open => return Ok(Some(format!("ticket {}", number(&ticket)))),
        Step::Acknowledge => json!({ "state": "2", "work_notes": said(m, "acknowledged", "acknowledged in Vakt") }),
        Step::Note => json!({ "work_notes": m.note.clone().unwrap_or_else(|| said(m, "note", "")) }),
        Step::Resolve => json!({
            "state": "6",
            "close_code": desk.close_code,
            "close_notes": said(m, "resolved", "resolved in Vakt"),
        }),
    };
    call(http, r, desk, Method::PATCH, &format!("{table}/{sys_id}"), Some(&update)).await?;
    Ok(None)
}

async fn jira(http: &reqwest::Client, r: &Receiver, desk: &Desk, m: &Message) -> Result<Option<String>, SendError> {
    let base = r.url.trim_end_matches('/');
    let key = dedup_key(m.incident.id);
    let jql = format!("labels = \"{key}\"");
    let search = reqwest::Url::parse_with_params(
        &format!("{base}/rest/api/2/search/jql"),
        &[("jql", jql.as_str()), ("fields", "key"), ("maxResults", "1")],
    )
    .map_err(|e| SendError { message: format!("{}: url: {e}", r.name), retry: Retry::Never })?;
    let found = call(http, r, desk, Method::GET, search.as_str(), None).await?;
    let existing = found["issues"].as_array().and_then(|a| a.first()).and_then(|i| i["key"].as_str()).map(String::from);
    let step = step_of(&m.event);
    let Some(issue) = existing else {
        if step != Step::Open {
            return Err(no_ticket(r, &key));
        }
        let created =
            call(http, r, desk, Method::POST, &format!("{base}/rest/api/2/issue"), Some(&jira_issue(m, desk))).await?;
        return Ok(Some(format!("ticket {}", created["key"].as_str().unwrap_or_default())));
    };
    let comment = |text: String| json!({ "body": text });
    let comments = format!("{base}/rest/api/2/issue/{issue}/comment");
    match step {
        Step::Open => return Ok(Some(format!("ticket {issue}"))),
        Step::Acknowledge => {
            call(
                http,
                r,
                desk,
                Method::POST,
                &comments,
                Some(&comment(said(m, "acknowledged", "acknowledged in Vakt"))),
            )
            .await?;
        }
        Step::Note => {
            let note = m.note.clone().unwrap_or_else(|| said(m, "note", ""));
            call(http, r, desk, Method::POST, &comments, Some(&comment(note))).await?;
        }
        Step::Resolve => {
            let transitions_url = format!("{base}/rest/api/2/issue/{issue}/transitions");
            let transitions = call(http, r, desk, Method::GET, &transitions_url, None).await?;
            let list = transitions["transitions"].as_array().cloned().unwrap_or_default();
            let wanted = desk.resolve_transition.to_lowercase();
            let Some(id) = list
                .iter()
                .find(|t| t["name"].as_str().is_some_and(|n| n.to_lowercase() == wanted))
                .and_then(|t| t["id"].as_str())
            else {
                let names: Vec<&str> = list.iter().filter_map(|t| t["name"].as_str()).collect();
                return Err(SendError {
                    message: format!(
                        "{}: {issue} has no transition {:?} (it has: {}); set resolve_transition",
                        r.name,
                        desk.resolve_transition,
                        names.join(", ")
                    ),
                    retry: Retry::Never,
                });
            };
            call(http, r, desk, Method::POST, &comments, Some(&comment(said(m, "resolved", "resolved in Vakt"))))
                .await?;
            call(http, r, desk, Method::POST, &transitions_url, Some(&json!({ "transition": { "id": id } }))).await?;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_map_to_the_desks_own_scales() {
        let sn: Vec<(&str, &str)> = ["P1", "P2", "P3", "P4", "P5"].iter().map(|p| impact_urgency(p)).collect();
        assert_eq!(sn, [("1", "1"), ("1", "2"), ("2", "2"), ("2", "3"), ("3", "3")]);
        let jira: Vec<&str> = ["P1", "P2", "P3", "P4", "P5"].iter().map(|p| jira_priority(p)).collect();
        assert_eq!(jira, ["Highest", "High", "Medium", "Low", "Lowest"]);
    }

    #[test]
    fn events_map_to_ticket_steps() {
        assert_eq!(step_of("firing"), Step::Open);
        assert_eq!(step_of("acknowledged"), Step::Acknowledge);
        assert_eq!(step_of("note"), Step::Note);
        assert_eq!(step_of("resolved"), Step::Resolve);
    }
}
