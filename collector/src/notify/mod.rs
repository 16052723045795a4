//! Notifications: which receivers an incident event goes to (pure routing), the payload each
//! kind of receiver documents, and the worker that delivers the durable outbox.
//!
//! An incident event and its notifications are written in one transaction (the outbox); the
//! worker delivers them after `group_wait`, with exponential backoff, and records each outcome.
//! A notification held back (its incident is linked under a root cause, or its services are in
//! maintenance) is recorded as suppressed, never dropped.

pub mod payload;
pub mod worker;

use std::sync::Arc;
use vakt_config::CollectorConfig;

use crate::incident::IncidentKind;

/// What routing looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts<'a> {
    pub kind: IncidentKind,
    pub subject: &'a str,
    pub severity: &'a str,
    pub priority: &'a str,
}

/// Routes incidents to receivers, as `[[routes]]` in collector.toml say.
#[derive(Clone, Default)]
pub struct Router {
    config: Option<Arc<CollectorConfig>>,
    group_wait_ms: i64,
}

fn priority_rank(p: &str) -> u8 {
    p.strip_prefix('P').and_then(|n| n.parse().ok()).unwrap_or(9)
}

impl Router {
    pub fn new(config: Arc<CollectorConfig>) -> Router {
        let group_wait_ms = i64::try_from(config.group_wait.get().as_millis()).unwrap_or(0);
        Router { config: Some(config), group_wait_ms }
    }

    pub fn group_wait_ms(&self) -> i64 {
        self.group_wait_ms
    }

    /// The receivers for an incident, in route order, without repeats.
    pub fn receivers(&self, facts: &Facts<'_>) -> Vec<String> {
        let Some(config) = &self.config else { return Vec::new() };
        let services = crate::catalog::services_of(config, facts.kind, facts.subject);
        let mut out: Vec<String> = Vec::new();
        for route in &config.routes {
            let matches = (route.services.is_empty() || route.services.iter().any(|s| services.contains(s.get_ref())))
                && (route.kinds.is_empty() || route.kinds.iter().any(|k| k.get_ref() == facts.kind.as_str()))
                && (route.severities.is_empty() || route.severities.iter().any(|s| s == facts.severity))
                && route
                    .min_priority
                    .as_ref()
                    .is_none_or(|p| priority_rank(facts.priority) <= priority_rank(p.get_ref()));
            if !matches {
                continue;
            }
            for r in &route.receivers {
                if !out.contains(r.get_ref()) {
                    out.push(r.get_ref().clone());
                }
            }
            if !route.continue_matching {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn router(routes: &str) -> Router {
        let src = format!(
            "[receivers.ops]\nkind = \"slack\"\nurl = {{ value = \"http://x\" }}\n\
             [receivers.mgmt]\nkind = \"webhook\"\nurl = {{ value = \"http://y\" }}\n\
             [receivers.all]\nkind = \"webhook\"\nurl = {{ value = \"http://z\" }}\n\
             [agents.a]\ntoken_hash = \"sha256:{h}\"\n\
             [checks.web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:80\"\nagents = [\"a\"]\n\
             [services.shop]\nchecks = [\"web\"]\n{routes}",
            h = "0".repeat(64)
        );
        Router::new(Arc::new(CollectorConfig::parse(&src, Path::new("t.toml")).unwrap()))
    }

    fn facts(priority: &str) -> Facts<'static> {
        let p: &'static str = Box::leak(priority.to_string().into_boxed_str());
        Facts { kind: IncidentKind::CheckDown, subject: "web", severity: "critical", priority: p }
    }

    #[test]
    fn first_matching_route_wins_unless_it_continues() {
        let r = router("[[routes]]\nservices = [\"shop\"]\nreceivers = [\"ops\"]\n[[routes]]\nreceivers = [\"all\"]\n");
        assert_eq!(r.receivers(&facts("P3")), ["ops"]);
        let r = router("[[routes]]\nservices = [\"shop\"]\nreceivers = [\"ops\"]\ncontinue = true\n[[routes]]\nreceivers = [\"all\"]\n");
        assert_eq!(r.receivers(&facts("P3")), ["ops", "all"]);
    }

    #[test]
    fn priority_and_kind_matchers() {
        let r = router(
            "[[routes]]\nmin_priority = \"P2\"\nreceivers = [\"mgmt\"]\ncontinue = true\n\
             [[routes]]\nkinds = [\"agent_silent\"]\nreceivers = [\"all\"]\n[[routes]]\nreceivers = [\"ops\"]\n",
        );
        assert_eq!(r.receivers(&facts("P1")), ["mgmt", "ops"]);
        assert_eq!(r.receivers(&facts("P3")), ["ops"]);
        let silent = Facts { kind: IncidentKind::AgentSilent, subject: "a", severity: "critical", priority: "P4" };
        assert_eq!(r.receivers(&silent), ["all"]);
    }
}
