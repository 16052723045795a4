//! ITIL priority from impact × urgency, and root causes along service dependencies. Pure.

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    High = 0,
    Medium = 1,
    Low = 2,
}

/// Impact from the most critical affected service (1 most critical .. 5) and how many
/// customers it touches: five or more raise it one level.
pub fn impact(criticality: Option<u8>, customers: usize) -> Level {
    let base = match criticality {
        Some(1) => Level::High,
        Some(2 | 3) | None => Level::Medium,
        Some(_) => Level::Low,
    };
    if customers >= 5 {
        match base {
            Level::Low => Level::Medium,
            _ => Level::High,
        }
    } else {
        base
    }
}

/// Urgency from the incident's severity.
pub fn urgency(severity: &str) -> Level {
    match severity {
        "critical" | "page" => Level::High,
        "ticket" | "warning" => Level::Medium,
        _ => Level::Low,
    }
}

/// The ITIL matrix: rows impact (high, medium, low), columns urgency (high, medium, low).
pub type Matrix = [[String; 3]; 3];

pub fn default_matrix() -> Matrix {
    [
        ["P1".into(), "P2".into(), "P3".into()],
        ["P2".into(), "P3".into(), "P4".into()],
        ["P3".into(), "P4".into(), "P5".into()],
    ]
}

pub fn priority(matrix: &Matrix, impact: Level, urgency: Level) -> String {
    matrix[impact as usize][urgency as usize].clone()
}

/// An unresolved incident, as root-cause linking sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub id: i64,
    pub kind: crate::core::incident::IncidentKind,
    pub services: Vec<String>,
    pub parent: Option<i64>,
    pub opened_ms: i64,
}

/// Links for incidents whose services depend on a service with its own open incident: one root
/// incident per outage, its dependants' incidents under it. `needs(a, b)` tells whether service
/// `a` depends on `b`, directly or not. Returns (child, root) pairs to set.
pub fn root_causes(open: &[Open], needs: impl Fn(&str, &str) -> bool) -> Vec<(i64, i64)> {
    let by_id: HashMap<i64, &Open> = open.iter().map(|o| (o.id, o)).collect();
    let root_of = |mut id: i64| {
        for _ in 0..32 {
            match by_id.get(&id).and_then(|o| o.parent) {
                Some(p) if by_id.contains_key(&p) => id = p,
                _ => break,
            }
        }
        id
    };
    let depends_on_another = |r: &Open| {
        open.iter().any(|o| o.id != r.id && r.services.iter().any(|s| o.services.iter().any(|d| d != s && needs(s, d))))
    };
    let mut links = Vec::new();
    // One problem, one page: an SLO burning while its own service's checks are down is that
    // outage, seen from the budget. It is shown under the check's incident, not paged again.
    use crate::core::incident::IncidentKind;
    for child in open.iter().filter(|o| o.parent.is_none() && o.kind == IncidentKind::SloBurn) {
        let own_outage = open
            .iter()
            .filter(|r| r.id != child.id && matches!(r.kind, IncidentKind::CheckDown | IncidentKind::Flapping))
            .filter(|r| r.services.iter().any(|s| child.services.contains(s)))
            .min_by_key(|r| (r.opened_ms, r.id));
        if let Some(r) = own_outage {
            links.push((child.id, root_of(r.id)));
        }
    }
    let linked: Vec<i64> = links.iter().map(|(c, _)| *c).collect();
    for child in open.iter().filter(|o| o.parent.is_none() && !linked.contains(&o.id)) {
        let cause = open
            .iter()
            .filter(|r| r.id != child.id)
            .filter(|r| {
                child.services.iter().any(|s| r.services.iter().any(|d| d != s && needs(s, d)))
                    && !r.services.iter().any(|d| child.services.iter().any(|s| s != d && needs(d, s)))
            })
            // The deepest cause first: an incident whose services need no other open one's.
            .min_by_key(|r| (depends_on_another(r), r.opened_ms, r.id));
        if let Some(r) = cause {
            let root = root_of(r.id);
            if root != child.id {
                links.push((child.id, root));
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_itil_matrix() {
        let m = default_matrix();
        assert_eq!(priority(&m, impact(Some(1), 0), urgency("critical")), "P1");
        assert_eq!(priority(&m, impact(Some(3), 0), urgency("critical")), "P2");
        assert_eq!(priority(&m, impact(Some(3), 0), urgency("ticket")), "P3");
        assert_eq!(priority(&m, impact(Some(5), 0), urgency("ticket")), "P4");
        assert_eq!(priority(&m, impact(Some(5), 0), urgency("info")), "P5");
        assert_eq!(priority(&m, impact(Some(3), 7), urgency("critical")), "P1", "many customers raise the impact");
    }

    fn open(id: i64, service: &str, at: i64) -> Open {
        Open {
            id,
            kind: crate::core::incident::IncidentKind::CheckDown,
            services: vec![service.into()],
            parent: None,
            opened_ms: at,
        }
    }

    /// The page on a fresh install: a failing check and the SLO burn it causes are one problem.
    #[test]
    fn an_slo_burning_with_its_own_checks_down_links_under_their_incident() {
        use crate::core::incident::IncidentKind;
        let no_deps = |_: &str, _: &str| false;
        let burn = Open { kind: IncidentKind::SloBurn, ..open(2, "shop", 20) };
        assert_eq!(root_causes(&[open(1, "shop", 10), burn.clone()], no_deps), vec![(2, 1)]);
        // Alone (the checks look fine but the SLI degrades: latency, partial errors), it pages.
        assert!(root_causes(&[burn.clone(), open(3, "mail", 5)], no_deps).is_empty());
        // Under the root of the check's incident when that one is linked itself.
        let mut shop = open(1, "shop", 10);
        shop.parent = Some(4);
        let needs = |a: &str, b: &str| (a, b) == ("shop", "db");
        let mut links = root_causes(&[shop, burn, open(4, "db", 5)], needs);
        links.sort();
        assert_eq!(links, vec![(2, 4)]);
    }

    #[test]
    fn dependants_link_under_the_dependency_whatever_opened_first() {
        // shop -> payments -> db
        let needs = |a: &str, b: &str| matches!((a, b), ("shop", "payments") | ("shop", "db") | ("payments", "db"));
        let incidents = vec![open(1, "shop", 10), open(2, "payments", 20), open(3, "db", 30)];
        let mut links = root_causes(&incidents, needs);
        links.sort();
        assert_eq!(links, vec![(1, 3), (2, 3)], "db is the root cause of both");
        // Unrelated services are left alone.
        assert!(root_causes(&[open(1, "shop", 0), open(2, "mail", 0)], needs).is_empty());
    }

    #[test]
    fn links_follow_an_existing_root() {
        let needs = |a: &str, b: &str| matches!((a, b), ("shop", "payments") | ("payments", "db") | ("shop", "db"));
        let mut payments = open(2, "payments", 20);
        payments.parent = Some(3);
        let incidents = vec![open(1, "shop", 10), payments, open(3, "db", 30)];
        assert_eq!(root_causes(&incidents, needs), vec![(1, 3)]);
    }
}
