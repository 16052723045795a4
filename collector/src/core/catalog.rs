//! What the service catalogue says about an incident: the services it touches, their
//! customers, and the priority that follows.

use std::collections::BTreeSet;
use vakt_config::CollectorConfig;

use crate::core::incident::IncidentKind;
use crate::core::priority::{default_matrix, impact, priority, urgency, Matrix};

/// The services an incident about `subject` touches.
pub fn services_of(config: &CollectorConfig, kind: IncidentKind, subject: &str) -> Vec<String> {
    match kind {
        IncidentKind::CheckDown | IncidentKind::Flapping | IncidentKind::CheckWarning => {
            config.services_of(subject).into_iter().map(String::from).collect()
        }
        IncidentKind::AgentSilent => {
            let checks: Vec<String> = config.assignments_for(subject).into_iter().map(|c| c.id).collect();
            let set: BTreeSet<String> = checks.iter().flat_map(|c| config.services_of(c)).map(String::from).collect();
            set.into_iter().collect()
        }
        IncidentKind::SloBurn => {
            config.slos.get(subject).map(|s| vec![s.service.get_ref().clone()]).unwrap_or_default()
        }
    }
}

/// Labels of the thing an incident is about: its check's, or its agent's.
pub fn labels_of(
    config: &CollectorConfig,
    kind: IncidentKind,
    subject: &str,
) -> std::collections::BTreeMap<String, String> {
    match kind {
        IncidentKind::CheckDown | IncidentKind::Flapping | IncidentKind::CheckWarning => {
            config.checks.get(subject).map(|c| c.labels.clone()).unwrap_or_default()
        }
        IncidentKind::AgentSilent => config.agents.get(subject).map(|a| a.labels.clone()).unwrap_or_default(),
        IncidentKind::SloBurn => Default::default(),
    }
}

/// Customers of the given services.
pub fn customers_of(config: &CollectorConfig, services: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = services
        .iter()
        .filter_map(|s| config.services.get(s.as_str()))
        .flat_map(|s| s.customers.iter().cloned())
        .collect();
    set.into_iter().collect()
}

pub fn matrix(config: &CollectorConfig) -> Matrix {
    match &config.priority_matrix {
        Some(rows) => {
            let mut m = default_matrix();
            for (i, row) in rows.iter().enumerate().take(3) {
                for (j, p) in row.iter().enumerate().take(3) {
                    m[i][j] = p.clone();
                }
            }
            m
        }
        None => default_matrix(),
    }
}

/// The ITIL priority of an incident of `severity` touching `services`.
pub fn priority_for(config: &CollectorConfig, services: &[String], severity: &str) -> String {
    let criticality =
        services.iter().filter_map(|s| config.services.get(s.as_str())).map(|s| *s.criticality.get_ref()).min();
    let customers = customers_of(config, services).len();
    priority(&matrix(config), impact(criticality, customers), urgency(severity))
}
