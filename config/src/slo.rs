//! SLOs, maintenance windows and the service catalogue of `collector.toml`.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

use crate::diagnostics::Reporter;
use crate::duration::HumanDuration;

/// What an SLO measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloKind {
    /// The service is up.
    Availability,
    /// Probes answer within `latency_threshold` (with `objective` as the percentile: 99 means
    /// "p99 under the threshold").
    Latency,
}

/// How availability is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SloMethod {
    /// Up time over valid time (milliseconds the service was down, from its checks' states).
    #[default]
    Time,
    /// Good probes over all probes.
    Events,
}

/// What time without data counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPolicy {
    /// Left out of the valid time (reported separately).
    #[default]
    Exclude,
    Good,
    Bad,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calendar {
    Month,
    Quarter,
}

/// One multi-window burn-rate rule: alert when the burn rate over both windows is at least
/// `factor`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnRule {
    /// "page" or "ticket".
    pub severity: Spanned<String>,
    pub long: HumanDuration,
    pub short: HumanDuration,
    pub factor: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// The service whose checks make up the SLI.
    pub service: Spanned<String>,
    #[serde(default = "default_kind")]
    pub kind: SloKind,
    #[serde(default)]
    pub method: SloMethod,
    /// Target in percent, e.g. 99.9.
    pub objective: Spanned<f64>,
    /// Rolling window, e.g. "30d". Exclusive with `calendar`.
    #[serde(default)]
    pub window: Option<Spanned<HumanDuration>>,
    /// Calendar window in `timezone`.
    #[serde(default)]
    pub calendar: Option<Calendar>,
    /// IANA time zone for calendar windows and reports (default UTC).
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// Latency SLOs: the bound.
    #[serde(default)]
    pub latency_threshold: Option<Spanned<HumanDuration>>,
    #[serde(default)]
    pub unknown: UnknownPolicy,
    /// Leave planned maintenance out of the SLA (default true).
    #[serde(default = "yes")]
    pub exclude_maintenance: bool,
    /// Burn-rate alert rules; the SRE workbook's four by default. `[]` turns alerts off.
    #[serde(default)]
    pub burn_alerts: Option<Vec<BurnRule>>,
    /// Count only inside these service hours (`[service_hours.NAME]`): outside them downtime is
    /// neither counted nor budgeted (business-hours contracts).
    #[serde(default)]
    pub service_hours: Option<Spanned<String>>,
}

/// When a contract counts: `days` from `hours` in `timezone`, less `holidays` (one-off dates
/// "2026-12-24" and yearly ones "12-25").
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceHoursConfig {
    #[serde(default = "utc")]
    pub timezone: Spanned<String>,
    /// "mon" ... "sun"; default Monday to Friday.
    #[serde(default = "weekdays")]
    pub days: Vec<Spanned<String>>,
    /// "08:00-16:00" (local time).
    pub hours: Spanned<String>,
    #[serde(default)]
    pub holidays: Vec<Spanned<String>>,
}

fn weekdays() -> Vec<Spanned<String>> {
    ["mon", "tue", "wed", "thu", "fri"].iter().map(|d| Spanned::new(0..0, d.to_string())).collect()
}

/// The weekday index (Monday 0) of "mon" ... "sun".
pub fn weekday_index(day: &str) -> Option<usize> {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].iter().position(|d| *d == day)
}

/// "08:00-16:00" as minutes of the day (start, end), end after start.
pub fn parse_hours(text: &str) -> Option<(u32, u32)> {
    let minutes = |t: &str| {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
    };
    let (a, b) = text.split_once('-')?;
    let (a, b) = (minutes(a)?, minutes(b)?);
    (a < b).then_some((a, b))
}

/// A holiday: "2026-12-24" (that date) or "12-25" (every year): (year, month, day).
pub fn parse_holiday(text: &str) -> Option<(Option<i16>, i8, i8)> {
    let parts: Vec<&str> = text.split('-').collect();
    let num = |s: &str| s.parse::<i16>().ok();
    let (y, m, d) = match parts.as_slice() {
        [y, m, d] if y.len() == 4 => (Some(num(y)?), num(m)?, num(d)?),
        [m, d] => (None, num(m)?, num(d)?),
        _ => return None,
    };
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m as i8, d as i8))
}

impl ServiceHoursConfig {
    pub fn validate(&self, name: &str, r: &mut Reporter<'_>) {
        if jiff::tz::TimeZone::get(self.timezone.get_ref()).is_err() {
            r.span(
                self.timezone.span(),
                format!("service_hours {name:?}: unknown time zone {:?}", self.timezone.get_ref()),
                "an IANA name, e.g. \"Europe/Oslo\"",
            );
        }
        for d in &self.days {
            if weekday_index(d.get_ref()).is_none() {
                r.span(
                    d.span(),
                    format!("service_hours {name:?}: {:?} is not a day", d.get_ref()),
                    "mon, tue, wed, thu, fri, sat or sun",
                );
            }
        }
        if parse_hours(self.hours.get_ref()).is_none() {
            r.span(
                self.hours.span(),
                format!("service_hours {name:?}: hours {:?} are not HH:MM-HH:MM", self.hours.get_ref()),
                "e.g. \"08:00-16:00\"",
            );
        }
        for h in &self.holidays {
            if parse_holiday(h.get_ref()).is_none() {
                r.span(
                    h.span(),
                    format!("service_hours {name:?}: holiday {:?} is not a date", h.get_ref()),
                    "\"2026-12-24\" for one day, \"12-25\" for every year",
                );
            }
        }
    }
}

fn default_kind() -> SloKind {
    SloKind::Availability
}
fn yes() -> bool {
    true
}

/// The SRE workbook's multi-window, multi-burn-rate rules for a 30-day SLO.
pub fn default_burn_rules() -> Vec<BurnRule> {
    let rule = |severity: &str, long: u64, short: u64, factor: f64| BurnRule {
        severity: Spanned::new(0..0, severity.to_string()),
        long: HumanDuration::from_secs(long),
        short: HumanDuration::from_secs(short),
        factor,
    };
    vec![
        rule("page", 3600, 300, 14.4),
        rule("page", 6 * 3600, 1800, 6.0),
        rule("ticket", 86_400, 2 * 3600, 3.0),
        rule("ticket", 3 * 86_400, 6 * 3600, 1.0),
    ]
}

impl SloConfig {
    pub fn burn_rules(&self) -> Vec<BurnRule> {
        self.burn_alerts.clone().unwrap_or_else(default_burn_rules)
    }

    pub fn validate(
        &self,
        name: &str,
        services: &BTreeMap<crate::Id, ServiceConfig>,
        hours: &BTreeMap<crate::Id, ServiceHoursConfig>,
        r: &mut Reporter<'_>,
    ) {
        if let Some(h) = &self.service_hours {
            if !hours.contains_key(h.get_ref().as_str()) {
                r.span(
                    h.span(),
                    format!("slo {name:?}: unknown service_hours {:?}", h.get_ref()),
                    "declare it under [service_hours.NAME]",
                );
            }
        }
        if !services.contains_key(self.service.get_ref().as_str()) {
            r.span(
                self.service.span(),
                format!("slo {name:?}: unknown service {:?}", self.service.get_ref()),
                "declare it under [services.NAME]",
            );
        }
        let o = *self.objective.get_ref();
        if !(o > 0.0 && o < 100.0) {
            r.span(
                self.objective.span(),
                format!("slo {name:?}: objective {o} is not a percentage below 100"),
                "e.g. 99.9",
            );
        }
        match (&self.window, &self.calendar) {
            (Some(w), Some(_)) => {
                r.span(w.span(), format!("slo {name:?}: both `window` and `calendar` are set"), "keep one")
            }
            (None, None) => r.span(
                self.service.span(),
                format!("slo {name:?}: no window"),
                "add window = \"30d\" or calendar = \"month\"",
            ),
            (Some(w), None) if w.get_ref().get() < std::time::Duration::from_secs(3600) => {
                r.span(w.span(), format!("slo {name:?}: a window under 1h"), "SLO windows are days long, e.g. \"30d\"")
            }
            _ => {}
        }
        if let Some(tz) = &self.timezone {
            if jiff::tz::TimeZone::get(tz.get_ref()).is_err() {
                r.span(
                    tz.span(),
                    format!("slo {name:?}: unknown time zone {:?}", tz.get_ref()),
                    "use an IANA name such as \"Europe/Oslo\"",
                );
            }
        }
        match (self.kind, &self.latency_threshold) {
            (SloKind::Latency, None) => r.span(
                self.service.span(),
                format!("slo {name:?}: a latency SLO needs latency_threshold"),
                "e.g. latency_threshold = \"300ms\"",
            ),
            (SloKind::Availability, Some(t)) => r.span(
                t.span(),
                format!("slo {name:?}: latency_threshold applies to latency SLOs"),
                "set kind = \"latency\" or remove it",
            ),
            _ => {}
        }
        for rule in self.burn_alerts.iter().flatten() {
            let s = rule.severity.get_ref();
            if s != "page" && s != "ticket" {
                r.span(
                    rule.severity.span(),
                    format!("slo {name:?}: severity {s:?} is not page or ticket"),
                    "page wakes someone up; ticket does not",
                );
            }
            // The burn rate is the error ratio over the budget's share, so it tops out at
            // 1 / (1 - objective) with every result failing: a factor above that never fires.
            let objective = *self.objective.get_ref();
            let most = (100.0 / (100.0 - objective) * 100.0).round() / 100.0;
            if objective < 100.0 && !(rule.factor > 0.0 && rule.factor <= most) {
                r.span(
                    rule.severity.span(),
                    format!(
                        "slo {name:?}: a burn rate of {}x can never be reached: with objective {objective}% the budget burns at most {most}x (every result failing)",
                        rule.factor
                    ),
                    "lower the factor (14.4 pages when a 30-day budget would be gone in about 2 days)",
                );
            }
        }
    }
}

/// A maintenance or change window: one-off (`start`, `end`) or recurring (`start`,
/// `duration`, `rrule`), in `timezone`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    pub name: String,
    /// Local time in `timezone`, "2026-10-03T22:00".
    pub start: Spanned<String>,
    /// One-off windows: local end time.
    #[serde(default)]
    pub end: Option<Spanned<String>>,
    /// Recurring windows: how long each occurrence lasts.
    #[serde(default)]
    pub duration: Option<Spanned<HumanDuration>>,
    /// Recurrence in RFC 5545 RRULE style: FREQ=DAILY|WEEKLY|MONTHLY, INTERVAL, BYDAY, COUNT, UNTIL.
    #[serde(default)]
    pub rrule: Option<Spanned<String>>,
    #[serde(default = "utc")]
    pub timezone: Spanned<String>,
    /// Services it covers; with neither `services` nor `selector`, all.
    #[serde(default)]
    pub services: Vec<Spanned<String>>,
    /// Also covers services with a check whose labels match, e.g. "tier=db".
    #[serde(default)]
    pub selector: Option<Spanned<crate::LabelSelector>>,
    #[serde(default)]
    pub change_id: Option<String>,
    /// Take its time out of SLA figures (default true).
    #[serde(default = "yes")]
    pub exclude_from_sla: bool,
}

fn utc() -> Spanned<String> {
    Spanned::new(0..0, "UTC".to_string())
}

/// The service catalogue entry: who owns it, who depends on it, what it depends on.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub customers: Vec<String>,
    #[serde(default)]
    pub vendor: Option<String>,
    /// 1 (highest) to 5 (lowest); drives the ITIL priority of its incidents. Default 3.
    #[serde(default = "default_criticality")]
    pub criticality: Spanned<u8>,
    /// Services this one needs: when one of them is down, this service's incidents are linked
    /// under it and its notifications held back.
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    /// The checks that make up this service.
    pub checks: Vec<Spanned<String>>,
}

fn default_criticality() -> Spanned<u8> {
    Spanned::new(0..0, 3)
}

impl MaintenanceConfig {
    pub fn validate(&self, services: &BTreeMap<crate::Id, ServiceConfig>, r: &mut Reporter<'_>) {
        let name = &self.name;
        let tz = jiff::tz::TimeZone::get(self.timezone.get_ref());
        if tz.is_err() {
            r.span(
                self.timezone.span(),
                format!("maintenance {name:?}: unknown time zone {:?}", self.timezone.get_ref()),
                "use an IANA name such as \"Europe/Oslo\"",
            );
        }
        let local = |s: &Spanned<String>, r: &mut Reporter<'_>| {
            if s.get_ref().parse::<jiff::civil::DateTime>().is_err() {
                r.span(
                    s.span(),
                    format!("maintenance {name:?}: {:?} is not a local date and time", s.get_ref()),
                    "write it as \"2026-10-03T22:00\"",
                );
            }
        };
        local(&self.start, r);
        match (&self.end, &self.duration, &self.rrule) {
            (Some(end), None, None) => {
                local(end, r);
                if let (Ok(a), Ok(b)) = (self.start.get_ref().parse::<jiff::civil::DateTime>(), end.get_ref().parse::<jiff::civil::DateTime>()) {
                    if b <= a {
                        r.span(end.span(), format!("maintenance {name:?}: end is not after start"), "a window ends after it starts");
                    }
                }
            }
            (None, Some(_), Some(rule)) => {
                if let Err(e) = crate::rrule::Rule::parse(rule.get_ref()) {
                    r.span(rule.span(), format!("maintenance {name:?}: {e}"), "e.g. \"FREQ=WEEKLY;BYDAY=SU\"");
                }
            }
            _ => r.span(
                self.start.span(),
                format!("maintenance {name:?}: give `end` for a one-off window, or `duration` and `rrule` for a recurring one"),
                "e.g. end = \"2026-10-04T02:00\"",
            ),
        }
        for s in &self.services {
            if !services.contains_key(s.get_ref().as_str()) {
                r.span(
                    s.span(),
                    format!("maintenance {name:?}: unknown service {:?}", s.get_ref()),
                    "declare it under [services.NAME]",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::CollectorConfig;
    use std::path::Path;

    fn errors(slo: &str) -> String {
        let text = format!(
            "[services.shop]\nchecks = []\n[slos.shop-availability]\nservice = \"shop\"\nwindow = \"30d\"\n{slo}"
        );
        match CollectorConfig::parse(&text, Path::new("collector.toml")) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_burn_rate_no_outage_can_reach_is_refused() {
        // 99.9 %: the budget is 0.1 % of results, so with every result failing it burns at
        // 100 / 0.1 = 1000x; 14.4x can fire, 1500x never. 95 %: 100 / 5 = 20x at most.
        let rule = |factor: &str| {
            format!("burn_alerts = [{{ severity = \"page\", long = \"1h\", short = \"5m\", factor = {factor} }}]\n")
        };
        assert_eq!(errors(&format!("objective = 99.9\n{}", rule("14.4"))), "");
        assert_eq!(errors(&format!("objective = 99.9\n{}", rule("1000"))), "", "reached with every result failing");
        let never = errors(&format!("objective = 99.9\n{}", rule("1500")));
        assert!(never.contains("a burn rate of 1500x can never be reached"), "{never}");
        assert!(never.contains("burns at most 1000x"), "{never}");
        assert!(never.contains("collector.toml:"), "file and line: {never}");
        let low = errors(&format!("objective = 95\n{}", rule("30")));
        assert!(low.contains("burns at most 20x"), "{low}");
        assert!(errors(&format!("objective = 99\n{}", rule("0"))).contains("can never be reached"));
    }
}
