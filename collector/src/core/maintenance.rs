//! Maintenance windows as intervals of Unix time. Pure: config and a time range in, intervals
//! out. Recurring windows start at the same local wall-clock time in their zone on every
//! occurrence, so "Sunday 02:00 Europe/Oslo" stays 02:00 across daylight-saving changes.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use vakt_config::rrule::Rule;
use vakt_config::slo::MaintenanceConfig;

fn unix_ms(local: DateTime, tz: &TimeZone) -> Option<i64> {
    local.to_zoned(tz.clone()).ok().map(|z| z.timestamp().as_millisecond())
}

/// The intervals of `m` that overlap `[from_ms, to_ms)`, in order.
pub fn intervals(m: &MaintenanceConfig, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
    let Ok(tz) = TimeZone::get(m.timezone.get_ref()) else { return Vec::new() };
    let Ok(start) = m.start.get_ref().parse::<DateTime>() else { return Vec::new() };
    let mut out = Vec::new();
    match (&m.end, &m.duration, &m.rrule) {
        (Some(end), _, None) => {
            if let (Some(a), Some(b)) =
                (unix_ms(start, &tz), end.get_ref().parse::<DateTime>().ok().and_then(|e| unix_ms(e, &tz)))
            {
                if a < to_ms && b > from_ms {
                    out.push((a, b));
                }
            }
        }
        (_, Some(duration), Some(rule)) => {
            let Ok(rule) = Rule::parse(rule.get_ref()) else { return out };
            let len = i64::try_from(duration.get_ref().get().as_millis()).unwrap_or(i64::MAX);
            rule.occurrences(start, |local| {
                let Some(a) = unix_ms(local, &tz) else { return true };
                if a >= to_ms {
                    return false;
                }
                if a + len > from_ms {
                    out.push((a, a + len));
                }
                true
            });
        }
        _ => {}
    }
    out
}

/// Occurrences of a recurring window whose local start a DST change makes ambiguous (the hour
/// the clocks go back: taken at its first occurrence, as RFC 5545 says) or skips (the hour they
/// go forward: taken as if the clocks had not yet moved, so it starts an hour later in local
/// time), within `[from_ms, to_ms)`: each as a sentence for the log.
pub fn dst_warnings(m: &MaintenanceConfig, from_ms: i64, to_ms: i64) -> Vec<String> {
    use jiff::tz::AmbiguousOffset;
    let (Ok(tz), Ok(start), Some(rule)) =
        (TimeZone::get(m.timezone.get_ref()), m.start.get_ref().parse::<DateTime>(), m.rrule.as_ref())
    else {
        return Vec::new();
    };
    let Ok(rule) = Rule::parse(rule.get_ref()) else { return Vec::new() };
    let mut out = Vec::new();
    rule.occurrences(start, |local| {
        let Some(at) = unix_ms(local, &tz) else { return true };
        if at >= to_ms || out.len() >= 8 {
            return false;
        }
        if at >= from_ms {
            match tz.to_ambiguous_zoned(local).offset() {
                AmbiguousOffset::Fold { .. } => out.push(format!(
                    "maintenance window {:?} on {local}: the hour repeats in {} (clocks go back); it starts at the first {}",
                    m.name,
                    m.timezone.get_ref(),
                    local.time()
                )),
                AmbiguousOffset::Gap { .. } => out.push(format!(
                    "maintenance window {:?} on {local}: {} does not exist in {} (clocks go forward); it starts an hour later",
                    m.name,
                    local.time(),
                    m.timezone.get_ref()
                )),
                AmbiguousOffset::Unambiguous { .. } => {}
            }
        }
        true
    });
    out
}

/// [`dst_warnings`] of every configured window over the year from `now_ms`.
pub fn dst_warnings_ahead(config: &vakt_config::CollectorConfig, now_ms: i64) -> Vec<String> {
    let year = 366 * 86_400_000;
    config.maintenance.iter().flat_map(|m| dst_warnings(m, now_ms, now_ms + year)).collect()
}

/// Whether `m` covers `service`.
pub fn covers(m: &MaintenanceConfig, service: &str) -> bool {
    m.services.is_empty() || m.services.iter().any(|s| s.get_ref() == service)
}

/// One occurrence of a maintenance window, from the config or created through the API.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Occurrence {
    pub name: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Empty: every service.
    pub services: Vec<String>,
    pub change_id: Option<String>,
    pub exclude_from_sla: bool,
    /// "config" or "api".
    pub source: &'static str,
    /// Who made a window through the API or CLI, and when; none for windows of the config.
    pub created: Option<Created>,
}

/// The audit record of a window created through the API or CLI.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Created {
    /// The API token's name ("cli" from the command line).
    pub by: String,
    pub at_ms: i64,
    /// Made after its start, on purpose: it takes recorded downtime out of the SLA.
    pub retroactive: bool,
}

/// A window may start this long before it is created without being retroactive: a window
/// that starts "now" reaches the collector a moment later.
pub const RETROACTIVE_GRACE_MS: i64 = 60_000;

/// Refuses a window that starts in the past unless it is `retroactive` on purpose: created
/// afterwards, it would erase recorded downtime from the SLA.
pub fn check_start(start_ms: i64, now_ms: i64, retroactive: bool) -> Result<(), String> {
    if start_ms < now_ms - RETROACTIVE_GRACE_MS && !retroactive {
        return Err(format!(
            "the window starts {} ago: created now it would take recorded downtime out of the SLA; \
             if the contract allows that, say so with retroactive = true (needs an admin token)",
            crate::core::time::human_span((now_ms - start_ms) / 60_000 * 60_000)
        ));
    }
    Ok(())
}

impl Occurrence {
    pub fn covers(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service)
    }
}

/// What subscribers are told of a maintenance window, and when: when it is scheduled (seen
/// before its start), `remind_before` its start, when it starts, and when it is completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticePhase {
    Scheduled,
    Reminder,
    Started,
    Completed,
}

impl NoticePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticePhase::Scheduled => "scheduled",
            NoticePhase::Reminder => "reminder",
            NoticePhase::Started => "started",
            NoticePhase::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<NoticePhase> {
        [NoticePhase::Scheduled, NoticePhase::Reminder, NoticePhase::Started, NoticePhase::Completed]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A notice about one occurrence, due now. `item` names it in the subscriber outbox (one per
/// subscriber and item, so planning again every few seconds sends nothing twice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub item: String,
    pub phase: NoticePhase,
    pub services: Vec<String>,
}

/// How long after its moment a start or completion notice is still worth sending (a collector
/// down at that moment sends it when it is back, within this).
pub const NOTICE_LATE_MS: i64 = 3_600_000;

/// The item naming a notice: "maintenance:START_MS:PHASE:NAME".
pub fn notice_item(o: &Occurrence, phase: NoticePhase) -> String {
    format!("maintenance:{}:{}:{}", o.start_ms, phase.as_str(), o.name)
}

/// Reads an item back: (start, phase, name).
pub fn parse_notice_item(item: &str) -> Option<(i64, NoticePhase, String)> {
    let mut parts = item.splitn(4, ':');
    if parts.next()? != "maintenance" {
        return None;
    }
    let start = parts.next()?.parse().ok()?;
    let phase = NoticePhase::parse(parts.next()?)?;
    Some((start, phase, parts.next()?.to_string()))
}

/// The notices due at `now_ms` for `occurrences`. Pure: the caller queues them (at most once
/// each per subscriber). A reminder only when it is still ahead of the start and the window
/// was not first scheduled inside the reminder span (then "scheduled" says it all).
pub fn notices(occurrences: &[Occurrence], now_ms: i64, remind_before_ms: i64) -> Vec<Notice> {
    let mut out = Vec::new();
    for o in occurrences {
        let mut due = Vec::new();
        if now_ms < o.start_ms {
            due.push(NoticePhase::Scheduled);
            let made = o.created.as_ref().map_or(i64::MIN, |c| c.at_ms);
            if now_ms >= o.start_ms - remind_before_ms && made < o.start_ms - remind_before_ms {
                due.push(NoticePhase::Reminder);
            }
        } else if now_ms < o.end_ms && now_ms < o.start_ms + NOTICE_LATE_MS {
            due.push(NoticePhase::Started);
        } else if now_ms >= o.end_ms && now_ms < o.end_ms + NOTICE_LATE_MS {
            due.push(NoticePhase::Completed);
        }
        out.extend(due.into_iter().map(|phase| Notice {
            item: notice_item(o, phase),
            phase,
            services: o.services.clone(),
        }));
    }
    out
}

/// The services a configured window covers by name and by label selector (empty: all).
pub fn covered_services(m: &MaintenanceConfig, config: Option<&vakt_config::CollectorConfig>) -> Vec<String> {
    let mut services: Vec<String> = m.services.iter().map(|s| s.get_ref().clone()).collect();
    if let (Some(sel), Some(config)) = (&m.selector, config) {
        for (name, svc) in &config.services {
            let matched = svc
                .checks
                .iter()
                .filter_map(|c| config.checks.get(c.get_ref().as_str()))
                .any(|c| sel.get_ref().matches(&c.labels));
            if matched && !services.iter().any(|s| s == name.as_str()) {
                services.push(name.to_string());
            }
        }
        if services.is_empty() {
            // A selector that matches nothing covers nothing, not everything.
            services.push(String::from("\u{0}none"));
        }
    }
    services
}

/// Every occurrence overlapping `[from_ms, to_ms)`: the config's windows expanded, plus the
/// ones created through the API; sorted by start.
pub fn occurrences(windows: &[MaintenanceConfig], created: &[Occurrence], from_ms: i64, to_ms: i64) -> Vec<Occurrence> {
    occurrences_in(None, windows, created, from_ms, to_ms)
}

/// [`occurrences`], resolving label selectors against `config`.
pub fn occurrences_in(
    config: Option<&vakt_config::CollectorConfig>,
    windows: &[MaintenanceConfig],
    created: &[Occurrence],
    from_ms: i64,
    to_ms: i64,
) -> Vec<Occurrence> {
    let mut out: Vec<Occurrence> = windows
        .iter()
        .flat_map(|m| {
            let services = covered_services(m, config);
            intervals(m, from_ms, to_ms).into_iter().map(move |(a, b)| Occurrence {
                name: m.name.clone(),
                start_ms: a,
                end_ms: b,
                services: services.clone(),
                change_id: m.change_id.clone(),
                exclude_from_sla: m.exclude_from_sla,
                source: "config",
                created: None,
            })
        })
        .chain(created.iter().filter(|o| o.start_ms < to_ms && o.end_ms > from_ms).cloned())
        .collect();
    out.sort_by_key(|o| (o.start_ms, o.end_ms));
    out
}

/// The SLA-excluded maintenance intervals of `service` in `[from_ms, to_ms)`, merged.
pub fn excluded_for(occurrences: &[Occurrence], service: &str) -> Vec<(i64, i64)> {
    let mut all: Vec<(i64, i64)> = occurrences
        .iter()
        .filter(|o| o.exclude_from_sla && o.covers(service))
        .map(|o| (o.start_ms, o.end_ms))
        .collect();
    all.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(all.len());
    for (a, b) in all {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// How long past its end a window's services stayed down: work that overran its window shows,
/// and that time is not excluded from the SLA. `periods` are the state periods of the covered
/// services' checks.
pub fn overrun_ms(end_ms: i64, now_ms: i64, periods: &[Vec<crate::core::slo::Period>]) -> i64 {
    periods
        .iter()
        .flatten()
        .filter(|p| {
            p.status == crate::core::slo::PeriodStatus::Down
                && p.start_ms < end_ms
                && p.end_ms.is_none_or(|e| e > end_ms)
        })
        .map(|p| p.end_ms.unwrap_or(now_ms).min(now_ms) - end_ms)
        .max()
        .unwrap_or(0)
        .max(0)
}

/// The window covering `service` at `t_ms`, if any (for silencing and for showing it).
pub fn active<'a>(windows: &'a [MaintenanceConfig], service: &str, t_ms: i64) -> Option<&'a MaintenanceConfig> {
    windows
        .iter()
        .find(|m| covers(m, service) && intervals(m, t_ms, t_ms + 1).iter().any(|(a, b)| *a <= t_ms && t_ms < *b))
}

#[cfg(test)]
mod dst_tests {
    use super::*;

    fn window(start: &str) -> MaintenanceConfig {
        let text = format!(
            "[[maintenance]]\nname = \"nightly\"\nstart = \"{start}\"\nduration = \"30m\"\nrrule = \"FREQ=DAILY\"\ntimezone = \"Europe/Oslo\"\n"
        );
        let c = vakt_config::CollectorConfig::parse(&text, std::path::Path::new("collector.toml")).unwrap();
        c.maintenance[0].clone()
    }

    fn ms(t: &str) -> i64 {
        t.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    /// A daily window at 02:30 in Oslo: on 25 October 2026 02:30 happens twice (it starts at the
    /// first, 00:30 UTC, as RFC 5545 says); on 29 March 2026 02:30 does not happen (it starts
    /// at 03:30 CEST, 01:30 UTC). Each is said; ordinary days are not.
    #[test]
    fn a_window_in_a_repeated_or_skipped_hour_is_resolved_and_said() {
        let m = window("2026-01-01T02:30");
        let autumn = dst_warnings(&m, ms("2026-10-20T00:00:00Z"), ms("2026-10-30T00:00:00Z"));
        assert_eq!(autumn.len(), 1, "{autumn:?}");
        assert!(autumn[0].contains("2026-10-25T02:30") && autumn[0].contains("the first 02:30"), "{autumn:?}");
        let occurrence = intervals(&m, ms("2026-10-25T00:00:00Z"), ms("2026-10-25T02:00:00Z"));
        assert_eq!(occurrence[0].0, ms("2026-10-25T00:30:00Z"), "the first 02:30 (CEST)");
        let spring = dst_warnings(&m, ms("2026-03-25T00:00:00Z"), ms("2026-04-02T00:00:00Z"));
        assert_eq!(spring.len(), 1, "{spring:?}");
        assert!(spring[0].contains("does not exist"), "{spring:?}");
        let occurrence = intervals(&m, ms("2026-03-29T00:00:00Z"), ms("2026-03-29T03:00:00Z"));
        assert_eq!(occurrence[0].0, ms("2026-03-29T01:30:00Z"), "an hour later: 03:30 CEST");
        assert!(dst_warnings(&window("2026-01-01T22:00"), ms("2026-01-01T00:00:00Z"), ms("2027-01-01T00:00:00Z"))
            .is_empty());
    }
}

#[cfg(test)]
mod retroactive_tests {
    use super::*;

    #[test]
    fn a_window_in_the_past_must_say_it_is_retroactive() {
        let now = 1_000_000_000;
        assert!(check_start(now + 60_000, now, false).is_ok(), "ahead of time");
        assert!(check_start(now - 30_000, now, false).is_ok(), "\"now\", as it arrives a moment later");
        assert!(check_start(now - 2 * 60_000, now, false).is_err(), "two minutes of downtime are not erased unasked");
        let err = check_start(now - 3 * 3_600_000, now, false).unwrap_err();
        assert!(err.starts_with("the window starts 3 h ago"), "{err}");
        assert!(check_start(now - 3 * 3_600_000, now, true).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn window(body: &str) -> MaintenanceConfig {
        let src = format!("[services.shop]\nchecks = []\n[[maintenance]]\nname = \"w\"\n{body}\n");
        vakt_config::CollectorConfig::parse(&src, Path::new("t.toml")).unwrap().maintenance.remove(0)
    }

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn one_off_window_in_its_time_zone() {
        let m = window("start = \"2026-10-03T22:00\"\nend = \"2026-10-04T02:00\"\ntimezone = \"Europe/Oslo\"");
        let got = intervals(&m, ms("2026-10-01T00:00:00Z"), ms("2026-11-01T00:00:00Z"));
        assert_eq!(got, vec![(ms("2026-10-03T20:00:00Z"), ms("2026-10-04T00:00:00Z"))]);
    }

    #[test]
    fn weekly_window_keeps_local_time_across_dst() {
        let m = window("start = \"2026-10-18T02:00\"\nduration = \"2h\"\nrrule = \"FREQ=WEEKLY;BYDAY=SU\"\ntimezone = \"Europe/Oslo\"");
        let got = intervals(&m, ms("2026-10-17T00:00:00Z"), ms("2026-11-02T00:00:00Z"));
        // CEST (UTC+2) on 18 Oct; CET (UTC+1) from 25 Oct, when 02:00 happens twice and the
        // earlier one is taken.
        assert_eq!(
            got,
            vec![
                (ms("2026-10-18T00:00:00Z"), ms("2026-10-18T02:00:00Z")),
                (ms("2026-10-25T00:00:00Z"), ms("2026-10-25T02:00:00Z")),
                (ms("2026-11-01T01:00:00Z"), ms("2026-11-01T03:00:00Z")),
            ]
        );
        assert!(active(std::slice::from_ref(&m), "shop", ms("2026-11-01T02:30:00Z")).is_some());
        assert!(active(std::slice::from_ref(&m), "shop", ms("2026-11-01T03:00:00Z")).is_none());
    }

    #[test]
    fn a_label_selector_covers_the_services_of_matching_checks() {
        let src = format!(
            "[agents.a]\ntoken_hash = \"sha256:{h}\"\n\
             [checks.db1]\nkind = \"tcp\"\ntarget = \"db:5432\"\nagents = [\"a\"]\nlabels = {{ tier = \"db\" }}\n\
             [checks.web1]\nkind = \"tcp\"\ntarget = \"web:80\"\nagents = [\"a\"]\n\
             [services.database]\nchecks = [\"db1\"]\n[services.shop]\nchecks = [\"web1\"]\n\
             [[maintenance]]\nname = \"db patch\"\nstart = \"2026-10-03T22:00\"\nend = \"2026-10-04T02:00\"\nselector = \"tier=db\"\n\
             [[maintenance]]\nname = \"nothing\"\nstart = \"2026-10-03T22:00\"\nend = \"2026-10-04T02:00\"\nselector = \"tier=cache\"\n",
            h = "0".repeat(64)
        );
        let config = vakt_config::CollectorConfig::parse(&src, Path::new("t.toml")).unwrap();
        let all = occurrences_in(Some(&config), &config.maintenance, &[], 0, i64::MAX / 2);
        assert_eq!(all[0].services, ["database"]);
        assert!(all[0].covers("database") && !all[0].covers("shop"));
        assert!(!all[1].covers("shop") && !all[1].covers("database"), "a selector matching nothing covers nothing");
    }

    #[test]
    fn an_overrun_is_the_downtime_past_the_end() {
        use crate::core::slo::{Period, PeriodStatus};
        let down = |a: i64, b: Option<i64>| Period { status: PeriodStatus::Down, start_ms: a, end_ms: b };
        assert_eq!(overrun_ms(100, 1_000, &[vec![down(50, Some(130))]]), 30);
        assert_eq!(overrun_ms(100, 1_000, &[vec![down(50, None)]]), 900, "still down: until now");
        assert_eq!(overrun_ms(100, 1_000, &[vec![down(50, Some(90))]]), 0, "recovered in time");
        assert_eq!(overrun_ms(100, 1_000, &[vec![down(120, Some(130))]]), 0, "a new outage is no overrun");
    }

    #[test]
    fn overlapping_windows_merge_and_scope_by_service() {
        let a = window("start = \"2026-10-03T22:00\"\nend = \"2026-10-04T02:00\"");
        let mut b = window("start = \"2026-10-04T01:00\"\nend = \"2026-10-04T03:00\"");
        let all = occurrences(&[a.clone(), b.clone()], &[], 0, i64::MAX / 2);
        let merged = excluded_for(&all, "shop");
        assert_eq!(merged, vec![(ms("2026-10-03T22:00:00Z"), ms("2026-10-04T03:00:00Z"))]);
        b.exclude_from_sla = false;
        let created = Occurrence {
            name: "api".into(),
            start_ms: 0,
            end_ms: 10,
            services: vec!["mail".into()],
            change_id: None,
            exclude_from_sla: true,
            source: "api",
            created: None,
        };
        let all = occurrences(&[a, b], &[created], 0, i64::MAX / 2);
        assert_eq!(all.len(), 3);
        assert_eq!(excluded_for(&all, "shop").len(), 1, "b is not excluded, the api window is the mail service's");
    }
}

#[cfg(test)]
mod notice_tests {
    use super::*;

    fn window(start_ms: i64, end_ms: i64, made_ms: Option<i64>) -> Occurrence {
        Occurrence {
            name: "db upgrade: phase 2".into(),
            start_ms,
            end_ms,
            services: vec!["shop".into()],
            change_id: None,
            exclude_from_sla: true,
            source: "api",
            created: made_ms.map(|at_ms| Created { by: "alice".into(), at_ms, retroactive: false }),
        }
    }

    const H: i64 = 3_600_000;

    #[test]
    fn each_phase_is_due_at_its_moment() {
        // Made at 0, starts at 48 h, ends at 50 h; reminders 24 h ahead.
        let w = [window(48 * H, 50 * H, Some(0))];
        let phases = |now: i64| notices(&w, now, 24 * H).into_iter().map(|n| n.phase).collect::<Vec<_>>();
        assert_eq!(phases(0), [NoticePhase::Scheduled]);
        assert_eq!(phases(24 * H - 1), [NoticePhase::Scheduled], "a millisecond before the reminder span");
        assert_eq!(phases(24 * H), [NoticePhase::Scheduled, NoticePhase::Reminder]);
        assert_eq!(phases(48 * H), [NoticePhase::Started]);
        assert_eq!(phases(49 * H - 1), [NoticePhase::Started], "still worth saying within the hour");
        assert_eq!(phases(49 * H), Vec::<NoticePhase>::new(), "an hour late: started is old news");
        assert_eq!(phases(50 * H), [NoticePhase::Completed]);
        assert_eq!(phases(51 * H), Vec::<NoticePhase>::new());
    }

    #[test]
    fn a_window_made_inside_the_reminder_span_is_not_reminded() {
        // Made 2 h before its start: "scheduled" tells it; no reminder on top.
        let w = [window(10 * H, 11 * H, Some(8 * H))];
        assert_eq!(notices(&w, 9 * H, 24 * H).len(), 1);
    }

    #[test]
    fn items_name_the_occurrence_and_read_back() {
        let w = window(48 * H, 50 * H, None);
        let item = notice_item(&w, NoticePhase::Reminder);
        assert_eq!(item, format!("maintenance:{}:reminder:db upgrade: phase 2", 48 * H));
        assert_eq!(parse_notice_item(&item), Some((48 * H, NoticePhase::Reminder, "db upgrade: phase 2".into())));
        assert_eq!(parse_notice_item("update:1:2"), None);
    }
}
