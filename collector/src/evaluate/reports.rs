//! Scheduled SLA reports (`[[report_schedules]]`): when a run is due, the report of its period
//! is built once, rendered (HTML with pictures, CSV attached) and queued for each recipient in
//! the subscriber outbox with its content, so a restart or a failover sends it once. A run
//! missed while the collector was down is built when it comes back, within the catch-up span.

use crate::app::App;
use crate::core::report_schedule::Schedule;
use crate::core::status_post::Subscriber;
use crate::evaluate::report::{build, render, Format, Scope};
use crate::store::StoreError;
use vakt_config::status::ReportSchedule;

/// The outbox item of a run: "report:NAME:PERIOD".
pub fn item(name: &str, period: &str) -> String {
    format!("report:{name}:{period}")
}

/// The subscriber kind a schedule's recipients are kept under.
pub fn kind(name: &str) -> String {
    format!("report:{name}")
}

fn schedule_of(app: &App, s: &ReportSchedule) -> Result<Schedule, String> {
    let tz = match &s.timezone {
        Some(t) => jiff::tz::TimeZone::get(t.get_ref()).map_err(|e| e.to_string())?,
        None => app.display_tz.clone(),
    };
    Schedule::parse(s.every.get_ref(), s.day.as_ref().map(|d| d.get_ref().as_text()).as_deref(), s.at.get_ref(), tz)
}

/// The report's scope as the schedule names it.
fn scope_of(s: &ReportSchedule) -> Option<Scope> {
    match (&s.service, &s.customer, &s.vendor) {
        (Some(x), None, None) => Some(Scope::Service(x.clone())),
        (None, Some(x), None) => Some(Scope::Customer(x.clone())),
        (None, None, Some(x)) => Some(Scope::Vendor(x.clone())),
        _ => None,
    }
}

/// Queues each schedule's run due at `now_ms` (once). Returns the items queued.
pub fn plan(app: &App, now_ms: i64) -> Result<Vec<String>, StoreError> {
    let mut queued = Vec::new();
    for s in &app.config.report_schedules {
        let name = s.name.get_ref();
        let schedule = match schedule_of(app, s) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(schedule = %name, error = %e, "report schedule cannot run");
                continue;
            }
        };
        let Some(run) = schedule.due(now_ms) else { continue };
        let item = item(name, &run.period);
        if app.store.subscriber_item_exists(&item)? {
            continue;
        }
        let Some(scope) = scope_of(s) else { continue };
        // The report's zone: the schedule's, else the display zone as configured, else the
        // contract's own (the SLOs').
        let tz = s
            .timezone
            .as_ref()
            .map(|t| t.get_ref().clone())
            .or_else(|| app.config.display_timezone.as_ref().map(|t| t.get_ref().clone()));
        let report = match build(app.store.as_ref(), &app.config, &scope, &run.period, tz.as_deref(), now_ms) {
            Ok(r) => r,
            Err(crate::evaluate::report::ReportError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(schedule = %name, error = %e, "scheduled report cannot be built");
                continue;
            }
        };
        let mut recipients = Vec::new();
        for to in &s.to {
            let sub = Subscriber {
                id: 0,
                kind: kind(name),
                address: to.get_ref().clone(),
                services: Vec::new(),
                token: crate::auth::secret(),
                created_ms: now_ms,
                confirmed_ms: Some(now_ms),
                unsubscribed_ms: None,
                failed_ms: None,
            };
            let (id, _) = app.store.add_subscriber(&sub)?;
            // Someone who unsubscribed from this report gets no more of it.
            if app.store.subscriber(id)?.is_some_and(|x| x.active()) {
                recipients.push(id);
            }
        }
        let payload = serde_json::json!({
            "subject": format!("SLA report {}: {}", report.period, report.scope),
            "text": format!(
                "The SLA report for {} ({}) is attached as CSV; the HTML part has the pictures.\n",
                report.scope, report.period
            ),
            "html": render(&report, Format::Html),
            "attachment_name": format!("sla-{}-{}.csv", name, report.period),
            "attachment": render(&report, Format::Csv),
        });
        app.store.enqueue_subscriber_messages(&recipients, &item, Some(&payload.to_string()), now_ms)?;
        tracing::info!(schedule = %name, period = %run.period, recipients = recipients.len(), "scheduled SLA report queued");
        queued.push(item);
    }
    Ok(queued)
}
