//! Which receivers an incident event goes to, as `[[routes]]` in collector.toml say, how long
//! its first announcement waits, and silences. Pure: config in, receivers out. The batch step
//! and the evaluator decide with it; `notify` delivers what they wrote to the outbox.

use std::sync::Arc;
use vakt_config::CollectorConfig;

use crate::core::incident::IncidentKind;

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

/// 1 for P1 ... 5 for P5; anything else ranks last.
pub(crate) fn priority_rank(p: &str) -> u8 {
    p.strip_prefix('P').and_then(|n| n.parse().ok()).unwrap_or(9)
}

impl Router {
    pub fn new(config: Arc<CollectorConfig>) -> Router {
        let group_wait_ms = i64::try_from(config.group_wait.get().as_millis()).unwrap_or(0);
        Router { config: Some(config), group_wait_ms }
    }

    fn kind_of(&self, receiver: &str) -> Option<vakt_config::notify::ReceiverKind> {
        self.config.as_ref()?.receivers.get(receiver).map(|r| r.kind)
    }

    /// Whether `receiver` keeps an alert per incident (a pager) and so is told of
    /// acknowledgements too.
    pub fn follows_lifecycle(&self, receiver: &str) -> bool {
        self.kind_of(receiver).is_some_and(|k| k.follows_lifecycle())
    }

    /// Whether `receiver` is a service desk, which keeps people's notes on its ticket.
    pub fn takes_notes(&self, receiver: &str) -> bool {
        self.kind_of(receiver).is_some_and(|k| k.is_service_desk())
    }

    pub fn group_wait_ms(&self) -> i64 {
        self.group_wait_ms
    }

    /// How long a new incident's first announcement waits: the group wait, and for a service
    /// that depends on others their `dependency_wait` too, so that when a dependency turns out
    /// to be down as well the incident is linked under it (and held back) before anyone is
    /// paged for the dependant. An incident without dependencies goes out after the group wait.
    pub fn hold_ms(&self, facts: &Facts<'_>) -> i64 {
        let Some(config) = &self.config else { return self.group_wait_ms };
        let services = crate::core::catalog::services_of(config, facts.kind, facts.subject);
        self.group_wait_ms.max(config.dependency_wait_ms(&services))
    }

    /// The routes an incident matches, in order (the first without `continue` ends the list).
    fn matching(&self, facts: &Facts<'_>) -> Vec<&vakt_config::notify::RouteConfig> {
        let Some(config) = &self.config else { return Vec::new() };
        let services = crate::core::catalog::services_of(config, facts.kind, facts.subject);
        let labels = crate::core::catalog::labels_of(config, facts.kind, facts.subject);
        let mut out = Vec::new();
        for route in &config.routes {
            let matches = (route.services.is_empty() || route.services.iter().any(|s| services.contains(s.get_ref())))
                && route.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
                && (route.kinds.is_empty() || route.kinds.iter().any(|k| k.get_ref() == facts.kind.as_str()))
                && (route.severities.is_empty() || route.severities.iter().any(|s| s == facts.severity))
                // Warnings are off on a route unless it asks for them.
                && (facts.kind != crate::core::incident::IncidentKind::CheckWarning
                    || route.kinds.iter().any(|k| k.get_ref() == "check_warning")
                    || route.severities.iter().any(|s| s == "warning"))
                && route
                    .min_priority
                    .as_ref()
                    .is_none_or(|p| priority_rank(facts.priority) <= priority_rank(p.get_ref()));
            if matches {
                out.push(route);
                if !route.continue_matching {
                    break;
                }
            }
        }
        out
    }

    /// The receivers for an incident, in route order, without repeats.
    pub fn receivers(&self, facts: &Facts<'_>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for route in self.matching(facts) {
            for r in &route.receivers {
                if !out.contains(r.get_ref()) {
                    out.push(r.get_ref().clone());
                }
            }
        }
        out
    }

    /// Escalations of the matching routes: (after ms, receivers).
    pub fn escalations(&self, facts: &Facts<'_>) -> Vec<(i64, Vec<String>)> {
        self.matching(facts)
            .into_iter()
            .filter_map(|r| {
                let after = i64::try_from(r.escalate_after?.get().as_millis()).unwrap_or(i64::MAX);
                Some((after, r.escalate_to.iter().map(|x| x.get_ref().clone()).collect()))
            })
            .collect()
    }

    pub fn repeat_interval_ms(&self) -> i64 {
        self.config
            .as_ref()
            .map_or(i64::MAX, |c| i64::try_from(c.repeat_interval.get().as_millis()).unwrap_or(i64::MAX))
    }
}

/// A silence: notifications of matching incidents are held back (and recorded as suppressed)
/// between `starts_ms` and `ends_ms`. Every matcher that is set must match.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Silence {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub author: String,
    pub comment: String,
}

impl Silence {
    pub fn matches(&self, facts: &Facts<'_>, services: &[String], at_ms: i64) -> bool {
        self.starts_ms <= at_ms
            && at_ms < self.ends_ms
            && self.service.as_ref().is_none_or(|s| services.contains(s))
            && self.subject.as_deref().is_none_or(|s| s == facts.subject)
            && self.kind.as_deref().is_none_or(|k| k == facts.kind.as_str())
            && self.severity.as_deref().is_none_or(|s| s == facts.severity)
    }
}
/// An outbox entry, as follow-up decisions see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub receiver: String,
    pub event: String,
    pub created_ms: i64,
}

/// Follow-ups for an open, unacknowledged incident at `now_ms`: a repeat to each receiver
/// last told more than `repeat_ms` ago, and escalations whose time has come. Pure.
pub fn followups(
    opened_ms: i64,
    sent: &[Sent],
    now_ms: i64,
    repeat_ms: i64,
    escalations: &[(i64, Vec<String>)],
) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let mut receivers: Vec<&str> = sent.iter().filter(|s| s.event == "firing").map(|s| s.receiver.as_str()).collect();
    receivers.sort_unstable();
    receivers.dedup();
    for r in receivers {
        let last = sent
            .iter()
            .filter(|s| s.receiver == r && (s.event == "firing" || s.event == "repeat"))
            .map(|s| s.created_ms)
            .max()
            .unwrap_or(opened_ms);
        if now_ms - last >= repeat_ms {
            out.push((r.to_string(), "repeat"));
        }
    }
    for (after, to) in escalations {
        if now_ms - opened_ms >= *after {
            for r in to {
                if !sent.iter().any(|s| &s.receiver == r) && !out.iter().any(|(x, _)| x == r) {
                    out.push((r.clone(), "firing"));
                }
            }
        }
    }
    out
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

    /// A dependant's first page waits for its dependencies' next result: the database's
    /// interval (30 s) and a second for the result to arrive; without dependencies, the group
    /// wait only; `dependency_wait` overrides.
    #[test]
    fn a_dependants_page_waits_for_its_dependencies() {
        let cfg = |extra: &str| {
            let src = format!(
                "group_wait = \"500ms\"\n{extra}\n\
                 [agents.a]\ntoken_hash = \"sha256:{h}\"\n\
                 [checks.web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:80\"\nagents = [\"a\"]\ninterval = \"10s\"\n\
                 [checks.db]\nkind = \"tcp\"\ntarget = \"127.0.0.1:5432\"\nagents = [\"a\"]\ninterval = \"30s\"\n\
                 [services.shop]\nchecks = [\"web\"]\ndepends_on = [\"database\"]\n\
                 [services.database]\nchecks = [\"db\"]\n",
                h = "0".repeat(64)
            );
            Router::new(Arc::new(CollectorConfig::parse(&src, Path::new("t.toml")).unwrap()))
        };
        let down = |check: &'static str| Facts {
            kind: IncidentKind::CheckDown,
            subject: check,
            severity: "critical",
            priority: "P1",
        };
        assert_eq!(cfg("").hold_ms(&down("web")), 31_000);
        assert_eq!(cfg("").hold_ms(&down("db")), 500, "no dependencies: the group wait");
        assert_eq!(cfg("dependency_wait = \"5s\"").hold_ms(&down("web")), 5_000);
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
    fn silences_match_on_every_matcher_set_and_only_while_active() {
        let f = Facts { kind: IncidentKind::CheckDown, subject: "web", severity: "critical", priority: "P2" };
        let services = vec!["shop".to_string()];
        let mut s = Silence {
            id: 1,
            service: Some("shop".into()),
            subject: None,
            kind: None,
            severity: None,
            starts_ms: 100,
            ends_ms: 200,
            author: "alice".into(),
            comment: "deploy".into(),
        };
        assert!(s.matches(&f, &services, 150));
        assert!(!s.matches(&f, &services, 200), "ended");
        assert!(!s.matches(&f, &services, 99), "not yet");
        s.subject = Some("db".into());
        assert!(!s.matches(&f, &services, 150), "every matcher must hold");
    }

    #[test]
    fn routes_match_check_labels() {
        let r = router(
            "[[routes]]\nlabels = { tier = \"db\" }\nreceivers = [\"mgmt\"]\n[[routes]]\nreceivers = [\"ops\"]\n",
        );
        assert_eq!(r.receivers(&facts("P3")), ["ops"], "web has no tier label");
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

    #[test]
    fn repeats_and_escalations() {
        let sent = |r: &str, e: &str, t: i64| Sent { receiver: r.into(), event: e.into(), created_ms: t };
        let esc = vec![(900_000, vec!["manager".to_string()])];
        // 10 minutes in: nothing yet.
        assert!(followups(0, &[sent("ops", "firing", 0)], 600_000, 3_600_000, &esc).is_empty());
        // 15 minutes unacknowledged: the manager is told, once.
        let f = followups(0, &[sent("ops", "firing", 0)], 900_000, 3_600_000, &esc);
        assert_eq!(f, vec![("manager".to_string(), "firing")]);
        assert!(followups(
            0,
            &[sent("ops", "firing", 0), sent("manager", "firing", 900_000)],
            1_000_000,
            3_600_000,
            &esc
        )
        .is_empty());
        // An hour after the last message: a repeat to each receiver told.
        let f =
            followups(0, &[sent("ops", "firing", 0), sent("manager", "firing", 900_000)], 3_600_000, 3_600_000, &esc);
        assert_eq!(f, vec![("ops".to_string(), "repeat")]);
        let f = followups(0, &[sent("ops", "firing", 0), sent("ops", "repeat", 3_600_000)], 3_700_000, 3_600_000, &[]);
        assert!(f.is_empty(), "the repeat resets the clock");
    }
}
