//! The periodic evaluation: decisions that depend on time passing rather than on a sample
//! arriving — today, agents that fell silent. The decisions are pure (`incident.rs`); this task
//! reads the store, asks them with the clock's `now`, and stores what they decide.

pub mod heartbeat;
pub mod report;
pub mod reports;
pub mod service;
pub mod slos;

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::core::catalog::{priority_for, services_of};
use crate::core::incident::{silent_agents, AgentPresence, IncidentKind, IncidentStatus};
use crate::core::time::Clock;
use crate::store::{IncidentFilter, StoreError};

/// How often the evaluation runs.
pub const TICK: Duration = Duration::from_secs(1);

/// One evaluation at `now_ms`; returns the incidents it opened.
pub fn evaluate(app: &App, now_ms: i64) -> Result<Vec<i64>, StoreError> {
    let seen = app.store.agents()?;
    let open = app.store.incidents(&IncidentFilter {
        status: Some(IncidentStatus::Open),
        kind: Some(IncidentKind::AgentSilent),
        ..Default::default()
    })?;
    let presence: Vec<AgentPresence> = app
        .config
        .agents
        .keys()
        .map(|name| AgentPresence {
            name: name.to_string(),
            last_seen_ms: seen.iter().find(|a| a.name == name.as_str()).map(|a| a.last_seen_ms),
            silent_after_ms: i64::try_from(app.config.silent_after(name.as_str()).as_millis()).unwrap_or(i64::MAX),
            incident_open: open.iter().any(|i| i.subject == name.as_str()),
        })
        .collect();
    let actions: Vec<_> = silent_agents(&presence, now_ms)
        .into_iter()
        .map(|a| {
            let subject = match &a {
                crate::core::incident::Action::Open { subject, .. } => subject.clone(),
                crate::core::incident::Action::Resolve { .. } => String::new(),
            };
            let services = services_of(&app.config, IncidentKind::AgentSilent, &subject);
            crate::core::incident::Incident::prioritised(a, priority_for(&app.config, &services, "critical"))
        })
        .collect();
    let opened = if actions.is_empty() { Vec::new() } else { app.store.open_incidents(&actions)? };
    if !opened.is_empty() {
        app.metrics.set_incidents_open_from(app.store.as_ref());
    }
    for id in &opened {
        tracing::warn!(incident = id, "incident opened: agent silent");
    }
    heartbeat::record_missed(app, now_ms)?;
    expire_stale_checks(app, now_ms)?;
    settle_flapping(app, now_ms)?;
    link_root_causes(app, now_ms)?;
    follow_up(app, now_ms)?;
    reports::plan(app, now_ms)?;
    Ok(opened)
}

/// Repeats and escalations for open incidents nobody has acknowledged.
pub fn follow_up(app: &App, now_ms: i64) -> Result<(), StoreError> {
    let open = app.store.incidents(&IncidentFilter { status: Some(IncidentStatus::Open), ..Default::default() })?;
    let mut items = Vec::new();
    let mut notes = Vec::new();
    for i in open.iter().filter(|i| i.status == IncidentStatus::Open && i.parent_id.is_none()) {
        let facts = crate::core::routing::Facts {
            kind: i.kind,
            subject: &i.subject,
            severity: &i.severity,
            priority: &i.priority,
        };
        let escalations = app.router.escalations(&facts);
        let sent: Vec<crate::core::routing::Sent> = app
            .store
            .notifications(Some(i.id))?
            .into_iter()
            .map(|n| crate::core::routing::Sent { receiver: n.receiver, event: n.event, created_ms: n.created_ms })
            .collect();
        if sent.is_empty() && escalations.is_empty() {
            continue;
        }
        for (receiver, event) in
            crate::core::routing::followups(i.opened_ms, &sent, now_ms, app.router.repeat_interval_ms(), &escalations)
        {
            tracing::info!(incident = i.id, %receiver, event, "follow-up notification");
            items.push((i.id, receiver, event.to_string()));
        }
        // A response or resolution target about to be breached: its receivers told again.
        let warn_before = app.config.response_targets.get(&i.priority).and_then(|t| t.warn_before);
        if let Some(warn_before) = warn_before {
            let targets = crate::core::incident::targets_of(i, &app.config, now_ms);
            let last_repeat = sent.iter().filter(|s| s.event == "repeat").map(|s| s.created_ms).max();
            let before_ms = i64::try_from(warn_before.get().as_millis()).unwrap_or(i64::MAX);
            if let Some(said) = crate::core::incident::target_warning(&targets, before_ms, last_repeat, now_ms) {
                let mut receivers: Vec<&str> =
                    sent.iter().filter(|s| s.event == "firing").map(|s| s.receiver.as_str()).collect();
                receivers.sort_unstable();
                receivers.dedup();
                for r in receivers {
                    if !items.iter().any(|(id, x, _)| *id == i.id && x == r) {
                        items.push((i.id, r.to_string(), "repeat".into()));
                    }
                }
                tracing::warn!(incident = i.id, "{said}");
                notes.push((i.id, crate::core::incident::ManualOp::Note { by: "vakt".into(), text: said }));
            }
        }
    }
    if !items.is_empty() {
        // Fenced: a leader whose term ended writes neither these nor the notes below.
        app.store.enqueue_notifications(&items, now_ms)?;
    }
    for (id, note) in notes {
        let _ = app.store.manual(id, &note, now_ms)?;
    }
    Ok(())
}

/// Checks whose results stopped coming (their agent is silent or lost them) become unknown:
/// no data is not "up", and not "down" either.
/// Whether results are overdue is judged by the collector's clock (when they last arrived), so
/// an agent whose clock stands behind is not taken for a silent one; the unknown period is
/// placed in the results' own time, after the last one.
pub fn expire_stale_checks(app: &App, now_ms: i64) -> Result<(), StoreError> {
    let stale: Vec<crate::store::StaleCheck> = app
        .store
        .check_states()?
        .into_iter()
        .filter(|(c, s)| !c.contains('@') && s.status != crate::core::state::Status::Unknown)
        .filter_map(|(c, s)| {
            let stale_ms = app.policies.stale_ms(&c);
            let last_sample = s.last_sample_ms?;
            // States written before receipt times were kept: the sample time stands in.
            let heard = s.last_received_ms.unwrap_or(last_sample);
            (heard + stale_ms < now_ms).then(|| crate::store::StaleCheck {
                // Declared later to avoid noise, but unknown from where the last result
                // stopped vouching.
                unknown_from_ms: crate::core::state::vouched_until(last_sample, app.policies.interval_ms(&c), stale_ms),
                check: c,
                last_received_ms: s.last_received_ms,
            })
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    for check in app.store.expire_checks(&stale)? {
        tracing::warn!(%check, "no recent results: check state unknown");
        app.metrics.set_check_state(&check, &crate::core::state::CheckState::default());
    }
    Ok(())
}

/// Resolves "flapping" incidents of checks that are up and have been quiet: no state change for
/// half their flap window (a low threshold, as Nagios has one, so that a check at the edge of
/// the threshold does not enter and leave flapping by turns).
pub fn settle_flapping(app: &App, now_ms: i64) -> Result<(), StoreError> {
    let open = app.store.incidents(&IncidentFilter {
        status: Some(IncidentStatus::Open),
        kind: Some(IncidentKind::Flapping),
        ..Default::default()
    })?;
    if open.is_empty() {
        return Ok(());
    }
    let states = app.store.check_states()?;
    let mut settled = Vec::new();
    for i in open {
        let quiet_ms = crate::core::incident::flap_quiet_ms(app.policies.flap_window_ms_of(&i.subject));
        let up = states.iter().any(|(c, s)| *c == i.subject && s.status == crate::core::state::Status::Up);
        if up && app.store.state_changes(&i.subject, now_ms - quiet_ms)? == 0 {
            let event = crate::core::incident::TimelineEvent {
                at_ms: now_ms,
                kind: "resolved".into(),
                message: format!(
                    "check {} settled: up, and no state change for {}",
                    i.subject,
                    crate::core::time::human_span(quiet_ms)
                ),
            };
            settled.push((IncidentKind::Flapping.dedup_key(&i.subject), event));
        }
    }
    if !app.store.resolve_incidents(&settled)?.is_empty() {
        app.metrics.set_incidents_open_from(app.store.as_ref());
    }
    Ok(())
}

/// Links incidents of dependent services under the incident of the service they depend on.
pub fn link_root_causes(app: &App, now_ms: i64) -> Result<(), StoreError> {
    let open = app.store.incidents(&IncidentFilter { status: Some(IncidentStatus::Open), ..Default::default() })?;
    if open.len() < 2 {
        return Ok(());
    }
    // A warning is no outage: it never holds another incident's page back.
    let view: Vec<crate::core::priority::Open> = open
        .iter()
        .filter(|i| i.kind != IncidentKind::CheckWarning)
        .map(|i| crate::core::priority::Open {
            id: i.id,
            kind: i.kind,
            services: services_of(&app.config, i.kind, &i.subject),
            parent: i.parent_id,
            opened_ms: i.opened_ms,
        })
        .collect();
    let links = crate::core::priority::root_causes(&view, |a, b| app.config.depends_transitively(a, b));
    if links.is_empty() {
        return Ok(());
    }
    let with_reasons: Vec<(i64, i64, String)> = links
        .into_iter()
        .map(|(child, root)| {
            let root_services = view.iter().find(|o| o.id == root).map(|o| o.services.join(", ")).unwrap_or_default();
            let own = view.iter().find(|o| o.id == child).is_some_and(|o| {
                o.kind == IncidentKind::SloBurn && o.services.iter().any(|s| root_services.split(", ").any(|r| r == s))
            });
            let reason = if own {
                format!("linked under incident {root}: the budget burns because {root_services} is down (one problem, one page)")
            } else {
                format!("linked under incident {root}: it depends on {root_services}, which is down")
            };
            (child, root, reason)
        })
        .collect();
    for (child, root, _) in &with_reasons {
        tracing::info!(incident = child, root, "incident linked under its root cause");
    }
    app.store.link_incidents(&with_reasons, now_ms)
}

/// Evaluates every SLO at `now_ms`: publishes the figures, opens and resolves burn-rate
/// incidents. Returns the verdicts.
pub fn evaluate_slos(app: &App, now_ms: i64) -> Result<Vec<crate::evaluate::slos::Evaluation>, StoreError> {
    let evaluations = crate::evaluate::slos::evaluate_all(app.store.as_ref(), &app.config, now_ms)?;
    *app.slo_verdicts.write().unwrap_or_else(|p| p.into_inner()) =
        Some((now_ms, evaluations.iter().map(|e| (e.name.clone(), e.verdict.clone())).collect()));
    let open = app.store.incidents(&IncidentFilter {
        status: Some(IncidentStatus::Open),
        kind: Some(IncidentKind::SloBurn),
        ..Default::default()
    })?;
    let mut to_open = Vec::new();
    let mut to_resolve = Vec::new();
    for e in &evaluations {
        let Some(cfg) = app.config.slos.get(e.name.as_str()) else { continue };
        let objective = *cfg.objective.get_ref() / 100.0;
        app.metrics.set_slo(&e.name, cfg.service.get_ref(), objective, &e.verdict, &e.published_burn_rates);
        let is_open = open.iter().any(|i| i.subject == e.name);
        match crate::core::incident::burn_action(&e.name, &e.verdict.alerts, is_open, now_ms) {
            Some(a @ crate::core::incident::Action::Open { .. }) => {
                let severity = match &a {
                    crate::core::incident::Action::Open { severity, .. } => severity.clone(),
                    crate::core::incident::Action::Resolve { .. } => String::new(),
                };
                let services = services_of(&app.config, IncidentKind::SloBurn, &e.name);
                to_open.push(crate::core::incident::Incident::prioritised(
                    a,
                    priority_for(&app.config, &services, &severity),
                ));
            }
            Some(crate::core::incident::Action::Resolve { event }) => {
                to_resolve.push((IncidentKind::SloBurn.dedup_key(&e.name), event))
            }
            None => {}
        }
    }
    if !app.leadership.is_leader() {
        // A follower publishes the figures; the leader opens and resolves.
        return Ok(evaluations);
    }
    let opened = app.store.open_incidents(&to_open)?;
    let resolved = app.store.resolve_incidents(&to_resolve)?;
    if !opened.is_empty() || !resolved.is_empty() {
        app.metrics.set_incidents_open_from(app.store.as_ref());
    }
    for id in &opened {
        tracing::warn!(incident = id, "incident opened: SLO burn rate");
    }
    if !opened.is_empty() {
        // Linked before the notifications' group wait ends: a burn caused by its service's own
        // outage is not paged again.
        link_root_causes(app, now_ms)?;
    }
    Ok(evaluations)
}

/// Publishes each service's state, and MTTA and MTTR over the last 30 days, overall and per
/// service.
pub fn publish_service_figures(app: &App, now_ms: i64) -> Result<(), StoreError> {
    for service in app.config.services.keys() {
        let state = crate::evaluate::service::service_state(app.store.as_ref(), &app.config, service.as_str(), now_ms)?;
        app.metrics.set_service_state(service.as_str(), state);
    }
    let recent = app.store.incidents(&IncidentFilter {
        overlapping: Some((now_ms - crate::metrics::MTTX_WINDOW_MS, now_ms)),
        ..Default::default()
    })?;
    let recent: Vec<_> =
        recent.into_iter().filter(|i| i.opened_ms >= now_ms - crate::metrics::MTTX_WINDOW_MS).collect();
    let secs = |(a, r): (Option<f64>, Option<f64>)| (a.map(|x| x / 1000.0), r.map(|x| x / 1000.0));
    let overall = secs(crate::core::incident::mean_times_ms(&recent));
    let per_service: Vec<(String, Option<f64>, Option<f64>)> = app
        .config
        .services
        .keys()
        .map(|service| {
            let mine: Vec<_> = recent
                .iter()
                .filter(|i| services_of(&app.config, i.kind, &i.subject).iter().any(|s| s == service.as_str()))
                .cloned()
                .collect();
            let (a, r) = secs(crate::core::incident::mean_times_ms(&mine));
            (service.to_string(), a, r)
        })
        .collect();
    app.metrics.set_mttx(overall, &per_service);
    Ok(())
}

/// Prunes data past its retention; runs hourly.
pub fn prune(app: &App, now_ms: i64) -> Result<(), StoreError> {
    let ms = |d: &vakt_config::HumanDuration| i64::try_from(d.get().as_millis()).unwrap_or(i64::MAX / 2);
    let raw = now_ms - ms(app.config.raw_retention.get_ref());
    let rollups = now_ms - ms(app.config.rollup_retention.get_ref());
    let (samples, minutes) = app.store.prune(raw, rollups)?;
    if samples + minutes > 0 {
        tracing::info!(samples, rollups = minutes, "pruned data past its retention");
    }
    Ok(())
}

/// Runs [`evaluate`] every [`TICK`] (and [`evaluate_slos`] every `slo_evaluation_interval`)
/// until shutdown.
pub async fn run(app: Arc<App>, clock: Arc<dyn Clock>, shutdown: CancellationToken) {
    let mut failing = false;
    let mut tick = 0u32;
    loop {
        let now = clock.now_ms();
        let tick_app = app.clone();
        let slo_every = (app.config.slo_evaluation_interval.get().as_millis() / TICK.as_millis()).max(1) as u32;
        let slos_due = tick.is_multiple_of(slo_every);
        tick = tick.wrapping_add(1);
        let prune_due = tick.is_multiple_of(3600);
        let size_due = tick.is_multiple_of(60);
        // Only the leader decides and writes; every node publishes the figures it serves.
        let leader = app.leadership.is_leader();
        let work = move || {
            let mut opened = Vec::new();
            if leader {
                if prune_due {
                    prune(&tick_app, now)?;
                }
                if size_due {
                    tick_app.metrics.set_storage_bytes(tick_app.store.size_bytes());
                }
                opened = evaluate(&tick_app, now)?;
            }
            // On every node (a follower's SLO round publishes and leaves the incidents alone).
            if slos_due && !tick_app.config.slos.is_empty() {
                evaluate_slos(&tick_app, now)?;
            }
            if slos_due {
                publish_service_figures(&tick_app, now)?;
            }
            Ok::<_, StoreError>(opened)
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(Ok(_)) => failing = false,
            Ok(Err(e)) if !failing => {
                tracing::error!(error = %e, "evaluation failed; retrying every tick");
                failing = true;
            }
            Ok(Err(_)) => {}
            Err(e) => tracing::error!(error = %e, "evaluation task failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
