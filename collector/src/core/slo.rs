//! SLO arithmetic: pure functions of per-minute SLI counts, the SLO and `now`. One cohesive
//! thing, hence its length (about half of it the table tests with hand-computed figures).
//!
//! A [`Series`] holds a service's down, unknown and excluded time as exact spans and its probe
//! counts per minute, both as prefix sums, so the total over any window is one subtraction: a
//! 30-day window, its burn-rate windows and a 400-day report cost the same. [`build_series`]
//! makes one from check state periods, maintenance windows and probe counts.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

pub const MINUTE_MS: i64 = 60_000;

/// What one minute (or any sum of minutes) contributes to an SLI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Probe results outside maintenance.
    pub events: u64,
    /// Bad probe results outside maintenance (failed, or slower than a latency SLO's bound).
    pub bad_events: u64,
    /// Milliseconds the service was down, outside maintenance.
    pub down_ms: u64,
    /// Milliseconds without a known state, outside maintenance.
    pub unknown_ms: u64,
    /// Milliseconds inside maintenance that is excluded from the SLA.
    pub excluded_ms: u64,
}

/// What a span of time was: down, unknown, or excluded (maintenance, outside service hours).
/// Up time is what no span covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SpanKind {
    Down = 0,
    Unknown = 1,
    Excluded = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start_ms: i64,
    end_ms: i64,
    kind: SpanKind,
}

/// A service's SLI over `[start, end)`: time as exact spans (down, unknown, excluded) and
/// probe counts per minute, each with prefix sums, so the total over any range is a binary
/// search and a subtraction: a 30-day window, its burn-rate windows and a 400-day report cost
/// the same, and time-based figures are exact to the millisecond at both edges.
#[derive(Clone, Debug)]
pub struct Series {
    /// Minute-aligned: where the first per-minute probe count starts.
    start_ms: i64,
    /// Where the known time ends: the time after it (and before `start_ms`) is unknown.
    end_ms: i64,
    spans: Vec<Span>,
    /// `span_cum[i]`: milliseconds of each kind in `spans[..i]`.
    span_cum: Vec<[u64; 3]>,
    /// `event_cum[i]`: (events, bad events) of the minutes before minute `i`.
    event_cum: Vec<(u64, u64)>,
}

impl Series {
    /// A series from per-minute counts starting at `start_ms` (floored to a minute): each
    /// minute's down, unknown and excluded time are laid out from its start, in that order.
    pub fn new(start_ms: i64, minutes: &[Counts]) -> Series {
        let start_ms = floor_minute(start_ms);
        let mut spans = Vec::new();
        for (i, m) in minutes.iter().enumerate() {
            let mut t = start_ms + i as i64 * MINUTE_MS;
            for (len, kind) in
                [(m.down_ms, SpanKind::Down), (m.unknown_ms, SpanKind::Unknown), (m.excluded_ms, SpanKind::Excluded)]
            {
                push_span(&mut spans, t, t + len as i64, kind);
                t += len as i64;
            }
        }
        let events: Vec<(u64, u64)> = minutes.iter().map(|m| (m.events, m.bad_events)).collect();
        Series::from_parts(start_ms, start_ms + minutes.len() as i64 * MINUTE_MS, spans, &events)
    }

    fn from_parts(start_ms: i64, end_ms: i64, spans: Vec<Span>, minute_events: &[(u64, u64)]) -> Series {
        let mut span_cum = Vec::with_capacity(spans.len() + 1);
        let mut acc = [0u64; 3];
        span_cum.push(acc);
        for s in &spans {
            acc[s.kind as usize] += (s.end_ms - s.start_ms) as u64;
            span_cum.push(acc);
        }
        let mut event_cum = Vec::with_capacity(minute_events.len() + 1);
        let mut acc = (0u64, 0u64);
        event_cum.push(acc);
        for (e, b) in minute_events {
            acc = (acc.0 + e, acc.1 + b);
            event_cum.push(acc);
        }
        Series { start_ms, end_ms, spans, span_cum, event_cum }
    }

    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    pub fn end_ms(&self) -> i64 {
        self.end_ms
    }

    /// The totals over `[from_ms, to_ms)`. Time is exact to the millisecond; time outside the
    /// series counts as unknown. Probes count by the minute they were made in: the minutes
    /// that start inside the range (a range ending inside the current minute includes it, one
    /// starting inside a minute leaves that minute to the range before).
    pub fn range(&self, from_ms: i64, to_ms: i64) -> Counts {
        let to_ms = to_ms.max(from_ms);
        // Spans overlapping [from, to): i = first ending after from, j = first starting at or after to.
        let i = self.spans.partition_point(|s| s.end_ms <= from_ms);
        let j = self.spans.partition_point(|s| s.start_ms < to_ms).max(i);
        let mut time = [0u64; 3];
        for (k, t) in time.iter_mut().enumerate() {
            *t = self.span_cum[j][k] - self.span_cum[i][k];
        }
        if i < j {
            let first = self.spans[i];
            time[first.kind as usize] -= (from_ms - first.start_ms).max(0) as u64;
            let last = self.spans[j - 1];
            time[last.kind as usize] -= (last.end_ms - to_ms).max(0) as u64;
        }
        let covered_from = from_ms.max(self.start_ms);
        let covered_to = to_ms.min(self.end_ms).max(covered_from);
        let outside = (to_ms - from_ms) - (covered_to - covered_from);
        let n = self.event_cum.len() as i64 - 1;
        let minute_at_or_after =
            |t: i64| ((t - self.start_ms + MINUTE_MS - 1).div_euclid(MINUTE_MS)).clamp(0, n) as usize;
        let (a, b) = (minute_at_or_after(from_ms), minute_at_or_after(to_ms));
        let (e1, e0) = (self.event_cum[b], self.event_cum[a]);
        Counts {
            events: e1.0 - e0.0,
            bad_events: e1.1 - e0.1,
            down_ms: time[SpanKind::Down as usize],
            unknown_ms: time[SpanKind::Unknown as usize] + outside as u64,
            excluded_ms: time[SpanKind::Excluded as usize],
        }
    }
}

/// Appends a span, merged with the last when they touch and are of one kind.
fn push_span(spans: &mut Vec<Span>, start_ms: i64, end_ms: i64, kind: SpanKind) {
    if end_ms <= start_ms {
        return;
    }
    match spans.last_mut() {
        Some(last) if last.kind == kind && last.end_ms == start_ms => last.end_ms = end_ms,
        _ => spans.push(Span { start_ms, end_ms, kind }),
    }
}

/// A check's state over a span of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeriodStatus {
    Up,
    Down,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub status: PeriodStatus,
    pub start_ms: i64,
    /// `None` while it lasts.
    pub end_ms: Option<i64>,
}

/// Per-minute probe counts of one minute (summed over a service's checks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinuteEvents {
    pub minute_ms: i64,
    pub events: u64,
    pub bad_events: u64,
}

/// The series of `[from_ms, to_ms)` for a service: down when any of its checks is down,
/// unknown when none is down and any has no known state, up otherwise; maintenance intervals
/// (`excluded`) take their time out of all three. `checks` holds each check's periods sorted
/// by start. Known up to `to_ms` exactly; the time from the minute `from_ms` falls in is
/// filled too, so that the first probe minute is whole.
pub fn build_series(
    from_ms: i64,
    to_ms: i64,
    checks: &[Vec<Period>],
    excluded: &[(i64, i64)],
    events: &[MinuteEvents],
) -> Series {
    let from_ms = floor_minute(from_ms);
    let end = to_ms.max(from_ms);
    let n = ((end - from_ms) + MINUTE_MS - 1) / MINUTE_MS;
    // Every instant where something may change.
    let mut cuts: Vec<i64> = vec![from_ms, end];
    for periods in checks {
        for p in periods {
            cuts.push(p.start_ms);
            cuts.extend(p.end_ms);
        }
    }
    for (a, b) in excluded {
        cuts.push(*a);
        cuts.push(*b);
    }
    cuts.retain(|t| (from_ms..=end).contains(t));
    cuts.sort_unstable();
    cuts.dedup();
    let status_at = |periods: &[Period], t: i64| -> PeriodStatus {
        // The last period starting at or before t, if it has not ended by t.
        let i = periods.partition_point(|p| p.start_ms <= t);
        match i.checked_sub(1).map(|i| &periods[i]) {
            Some(p) if p.end_ms.is_none_or(|e| e > t) => p.status,
            _ => PeriodStatus::Unknown,
        }
    };
    let mut spans = Vec::new();
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let in_maintenance = excluded.iter().any(|(s, e)| *s <= a && a < *e);
        let status = if checks.is_empty() {
            PeriodStatus::Unknown
        } else {
            let states: Vec<PeriodStatus> = checks.iter().map(|p| status_at(p, a)).collect();
            if states.contains(&PeriodStatus::Down) {
                PeriodStatus::Down
            } else if states.contains(&PeriodStatus::Unknown) {
                PeriodStatus::Unknown
            } else {
                PeriodStatus::Up
            }
        };
        let kind = match (in_maintenance, status) {
            (true, _) => SpanKind::Excluded,
            (false, PeriodStatus::Down) => SpanKind::Down,
            (false, PeriodStatus::Unknown) => SpanKind::Unknown,
            (false, PeriodStatus::Up) => continue,
        };
        push_span(&mut spans, a, b, kind);
    }
    let mut minutes = vec![(0u64, 0u64); n as usize];
    for e in events {
        if e.minute_ms < from_ms || e.minute_ms >= from_ms + n * MINUTE_MS {
            continue;
        }
        if excluded.iter().any(|(s, x)| *s <= e.minute_ms && e.minute_ms < *x) {
            continue; // probes during maintenance are not counted
        }
        let m = &mut minutes[((e.minute_ms - from_ms) / MINUTE_MS) as usize];
        m.0 += e.events;
        m.1 += e.bad_events;
    }
    Series::from_parts(from_ms, end, spans, &minutes)
}

// ------------------------------------------------------------------ SLOs

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Up time over valid time.
    Time,
    /// Good events over all events (availability by probes, or latency).
    Events,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unknown {
    Exclude,
    Good,
    Bad,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Window {
    Rolling {
        ms: i64,
    },
    /// Calendar months (`months = 1`) or quarters (`months = 3`) in a time zone.
    Calendar {
        months: i8,
        tz: TimeZone,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct BurnRule {
    pub severity: String,
    pub long_ms: i64,
    pub short_ms: i64,
    pub factor: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Slo {
    pub name: String,
    pub method: Method,
    /// As a ratio: 0.999.
    pub objective: f64,
    pub window: Window,
    pub unknown: Unknown,
    pub rules: Vec<BurnRule>,
    /// Service hours: only they count (the series has the rest excluded); a running period's
    /// time still to come is counted by them too.
    pub hours: Option<crate::core::service_hours::Hours>,
}

/// Good, bad and valid amounts over a range, in ms (time) or events.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sli {
    pub valid: f64,
    pub bad: f64,
}

impl Sli {
    pub fn bad_ratio(&self) -> f64 {
        if self.valid <= 0.0 {
            0.0
        } else {
            self.bad / self.valid
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BurnAlert {
    pub severity: String,
    pub long_ms: i64,
    pub short_ms: i64,
    pub factor: f64,
    pub long_rate: f64,
    pub short_rate: f64,
}

impl BurnAlert {
    /// "page 14.4x over 1 h": as the API and the SLA page show it.
    pub fn describe(&self) -> String {
        format!("{} {}x over {}", self.severity, self.factor, crate::core::time::human_span(self.long_ms))
    }
}

/// How an SLO stands over a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No valid data in the period: neither met nor breached.
    NoData,
    /// A rolling window with data for less than a tenth of it (a young install): its figures
    /// are shown, but say little yet.
    NotEnoughData,
    /// A finished period within its budget.
    Met,
    /// A running period within its budget, and at today's burn rate it will stay so.
    OnTrack,
    /// A running period within its budget, but at today's burn rate the budget runs out before
    /// the period ends.
    AtRisk,
    /// More spent than the whole period's budget.
    Breached,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NoData => "no data",
            Status::NotEnoughData => "not enough data yet",
            Status::Met => "met",
            Status::OnTrack => "on track",
            Status::AtRisk => "at risk",
            Status::Breached => "breached",
        }
    }
}

/// How an SLO fared over a span of time. Error budget in the SLI's unit (ms or events);
/// `budget_remaining_ratio` is 1 untouched, 0 spent, negative overspent; `achieved` is `None`
/// without valid data.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub counts: Counts,
    pub sli: Sli,
    pub achieved: Option<f64>,
    /// Within budget with data (met, on track or at risk).
    pub met: bool,
    pub status: Status,
    pub budget_allowed: f64,
    pub budget_spent: f64,
    pub budget_remaining_ratio: f64,
    /// A running period: when the budget runs out at the burn rate so far (if it is burning).
    pub forecast_exhausted_ms: Option<i64>,
}

/// Everything about an SLO at a moment: how it fares over its window (`Assessment`, reachable
/// through `Deref`), its burn rates and the alerts they raise.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub assessment: Assessment,
    /// Burn rate per distinct rule window, (window ms, rate).
    pub burn_rates: Vec<(i64, f64)>,
    pub alerts: Vec<BurnAlert>,
}

impl std::ops::Deref for Verdict {
    type Target = Assessment;
    fn deref(&self) -> &Assessment {
        &self.assessment
    }
}

impl Slo {
    /// The SLI over `[from_ms, to_ms)`.
    pub fn sli(&self, c: &Counts, from_ms: i64, to_ms: i64) -> Sli {
        match self.method {
            Method::Events => Sli { valid: c.events as f64, bad: c.bad_events as f64 },
            Method::Time => {
                let span = (to_ms - from_ms).max(0) as f64;
                let base = span - c.excluded_ms as f64;
                match self.unknown {
                    Unknown::Exclude => Sli { valid: base - c.unknown_ms as f64, bad: c.down_ms as f64 },
                    Unknown::Good => Sli { valid: base, bad: c.down_ms as f64 },
                    Unknown::Bad => Sli { valid: base, bad: (c.down_ms + c.unknown_ms) as f64 },
                }
            }
        }
    }

    /// The window that ends at (or contains) `now_ms`: a rolling one is exactly its length.
    pub fn window_at(&self, now_ms: i64) -> (i64, i64) {
        match &self.window {
            Window::Rolling { ms } => (now_ms - ms, now_ms),
            Window::Calendar { months, tz } => calendar_period(now_ms, *months, tz),
        }
    }

    /// How much of an assessed span was observed: valid time (time-based), or the minutes that
    /// had probes (event-based, one minute per probe at most).
    pub fn observed_ms(&self, a: &Assessment) -> i64 {
        match self.method {
            Method::Time => match self.unknown {
                Unknown::Exclude => a.sli.valid as i64,
                Unknown::Good | Unknown::Bad => (a.sli.valid as i64).saturating_sub(a.counts.unknown_ms as i64),
            },
            Method::Events => {
                i64::try_from(a.counts.events).unwrap_or(i64::MAX).saturating_mul(MINUTE_MS).min(i64::MAX / 2)
            }
        }
    }

    /// Whether `[from_ms, to_ms)` is fully covered by observed data: no unknown time in it
    /// (time-based), or probes counted from its first minute on (event-based). A burn rate over
    /// a window mostly without data says nothing: 30 seconds of failures on a fresh install
    /// are not a 5-minute burn.
    pub fn observed(&self, series: &Series, from_ms: i64, to_ms: i64) -> bool {
        match self.method {
            Method::Time => series.range(from_ms, to_ms).unknown_ms == 0,
            Method::Events => {
                let minute = floor_minute(from_ms);
                minute >= series.start_ms() && series.range(minute, (minute + MINUTE_MS).min(to_ms)).events > 0
            }
        }
    }

    pub fn burn_rate(&self, series: &Series, from_ms: i64, to_ms: i64) -> f64 {
        let sli = self.sli(&series.range(from_ms, to_ms), from_ms, to_ms);
        let allowed = 1.0 - self.objective;
        if allowed <= 0.0 {
            return 0.0;
        }
        sli.bad_ratio() / allowed
    }

    /// How the SLO fared over the finished span `[from_ms, to_ms)` (a report period, or a
    /// rolling window): its budget is the objective applied to the span's valid time.
    /// The share of `allowed` (a window's or period's budget) left at `points + 1` even steps
    /// from `from_ms` to `to_ms`: the budget line the pages and reports draw.
    pub fn budget_left(&self, series: &Series, from_ms: i64, to_ms: i64, allowed: f64, points: i64) -> Vec<(i64, f64)> {
        (0..=points)
            .map(|k| {
                let at = from_ms + (to_ms - from_ms) * k / points.max(1);
                let spent = self.assess(series, from_ms, at).budget_spent;
                (at, if allowed > 0.0 { 1.0 - spent / allowed } else { 1.0 })
            })
            .collect()
    }

    pub fn assess(&self, series: &Series, from_ms: i64, to_ms: i64) -> Assessment {
        let counts = series.range(from_ms, to_ms);
        let sli = self.sli(&counts, from_ms, to_ms);
        let budget_allowed = (1.0 - self.objective) * sli.valid;
        let mut a = Self::judged(counts, sli, budget_allowed);
        if a.status == Status::OnTrack {
            a.status = Status::Met;
        }
        a
    }

    /// How the SLO stands in the period `[from_ms, end_ms)` at `now_ms`. A finished period is
    /// [`Slo::assess`]ed; a running one is judged against the whole period: its budget is the
    /// objective applied to the valid time so far plus the time still to come (time-based), or
    /// to the events so far scaled to the whole period (event-based), as Sloth and Zabbix
    /// report it. Breached only when more is spent than that; at risk when the burn rate so far
    /// would spend it before the period ends.
    pub fn assess_period(&self, series: &Series, from_ms: i64, end_ms: i64, now_ms: i64) -> Assessment {
        if now_ms >= end_ms {
            return self.assess(series, from_ms, end_ms);
        }
        let upto = now_ms.max(from_ms);
        let counts = series.range(from_ms, upto);
        let sli = self.sli(&counts, from_ms, upto);
        // With service hours only they count, so far and still to come.
        let counted = |a: i64, b: i64| self.hours.as_ref().map_or(b - a, |h| h.inside_ms(a, b));
        let (elapsed, rest) = (counted(from_ms, upto) as f64, counted(upto, end_ms) as f64);
        let whole_valid = match self.method {
            Method::Time => sli.valid + rest,
            Method::Events if elapsed > 0.0 => sli.valid * (elapsed + rest) / elapsed,
            Method::Events => 0.0,
        };
        let mut a = Self::judged(counts, sli, (1.0 - self.objective) * whole_valid);
        if a.status == Status::OnTrack && a.budget_spent > 0.0 && elapsed > 0.0 {
            let per_ms = a.budget_spent / elapsed;
            let left_ms = (a.budget_allowed - a.budget_spent) / per_ms;
            // In counted time: with service hours the forecast is in their time too (a
            // wall-clock date is then an approximation on the early side).
            let exhausted = upto.saturating_add(left_ms.min(i64::MAX as f64 / 2.0) as i64);
            a.forecast_exhausted_ms = Some(exhausted);
            if exhausted < end_ms {
                a.status = Status::AtRisk;
            }
        }
        a
    }

    /// The figures and the status (no data, breached, or on track) of spent against allowed.
    fn judged(counts: Counts, sli: Sli, budget_allowed: f64) -> Assessment {
        let achieved = (sli.valid > 0.0).then(|| 1.0 - sli.bad_ratio());
        let budget_spent = sli.bad;
        let budget_remaining_ratio = if budget_allowed > 0.0 { 1.0 - budget_spent / budget_allowed } else { 1.0 };
        // Exact at the boundary: 43.2 minutes down in 30 days is 99.9% met.
        let within = budget_spent <= budget_allowed * (1.0 + 1e-12);
        let status = match (achieved, within) {
            (None, _) => Status::NoData,
            (Some(_), false) => Status::Breached,
            (Some(_), true) => Status::OnTrack,
        };
        Assessment {
            counts,
            sli,
            achieved,
            met: achieved.is_some() && within,
            status,
            budget_allowed,
            budget_spent,
            budget_remaining_ratio,
            forecast_exhausted_ms: None,
        }
    }

    /// Everything about this SLO at `now_ms`.
    pub fn evaluate(&self, series: &Series, now_ms: i64) -> Verdict {
        let (start, end) = self.window_at(now_ms);
        let assessment = match self.window {
            // A calendar window is judged against the whole period, the part still to come too.
            Window::Calendar { .. } => self.assess_period(series, start, end, now_ms),
            Window::Rolling { ms } => {
                let mut a = self.assess(series, start, end.min(now_ms));
                // A young install: 30 seconds of data are no verdict on 30 days.
                if a.status != Status::NoData && self.observed_ms(&a) * 10 < ms {
                    a.status = Status::NotEnoughData;
                }
                a
            }
        };
        let now = now_ms;
        let mut burn_rates: Vec<(i64, f64)> = Vec::new();
        let mut rate = |w: i64| -> f64 {
            if let Some((_, r)) = burn_rates.iter().find(|(x, _)| *x == w) {
                return *r;
            }
            let r = self.burn_rate(series, now - w, now);
            burn_rates.push((w, r));
            r
        };
        let mut alerts = Vec::new();
        for rule in &self.rules {
            let (long_rate, short_rate) = (rate(rule.long_ms), rate(rule.short_ms));
            // At the factor counts: 0.6% errors against a 99.9% objective is a 6x burn, even
            // though 0.006 / 0.001 is 5.999999999999995 in floating point.
            let reaches = |rate: f64| rate >= rule.factor * (1.0 - 1e-9);
            // The short window must be covered by observed data (see `observed`).
            let covered = self.observed(series, now - rule.short_ms, now);
            if covered && reaches(long_rate) && reaches(short_rate) {
                alerts.push(BurnAlert {
                    severity: rule.severity.clone(),
                    long_ms: rule.long_ms,
                    short_ms: rule.short_ms,
                    factor: rule.factor,
                    long_rate,
                    short_rate,
                });
            }
        }
        burn_rates.sort_by_key(|(w, _)| *w);
        Verdict { window_start_ms: start, window_end_ms: end, assessment, burn_rates, alerts }
    }
}

pub fn floor_minute(t_ms: i64) -> i64 {
    t_ms - t_ms.rem_euclid(MINUTE_MS)
}

/// The calendar month (or quarter) containing `t_ms` in `tz`: [start, end) in Unix ms.
pub fn calendar_period(t_ms: i64, months: i8, tz: &TimeZone) -> (i64, i64) {
    let Ok(ts) = Timestamp::from_millisecond(t_ms) else { return (t_ms, t_ms) };
    let local = ts.to_zoned(tz.clone());
    let month0 = (local.month() - 1) / months * months + 1;
    let start = jiff::civil::date(local.year(), month0, 1).at(0, 0, 0, 0);
    let start = start.to_zoned(tz.clone()).unwrap_or_else(|_| local.clone());
    let end = start.checked_add((months as i64).months()).unwrap_or_else(|_| start.clone());
    (start.timestamp().as_millisecond(), end.timestamp().as_millisecond())
}

/// A calendar period named like "2026-10" (month), "2026-Q4" (quarter) or "2026-W48" (ISO
/// week, Monday to Monday) in `tz`.
pub fn named_period(name: &str, tz: &TimeZone) -> Result<(i64, i64), String> {
    let bad = || format!("period {name:?} is not YYYY-MM, YYYY-Qn or YYYY-Www");
    let (year, rest) = name.split_once('-').ok_or_else(bad)?;
    let year: i16 = year.parse().map_err(|_| bad())?;
    if let Some(w) = rest.strip_prefix('W') {
        let week: i8 = w.parse().map_err(|_| bad())?;
        let monday = jiff::civil::ISOWeekDate::new(year, week, jiff::civil::Weekday::Monday).map_err(|_| bad())?.date();
        let start: Zoned = monday.at(0, 0, 0, 0).to_zoned(tz.clone()).map_err(|e| e.to_string())?;
        let end = start.checked_add(7.days()).map_err(|e| e.to_string())?;
        return Ok((start.timestamp().as_millisecond(), end.timestamp().as_millisecond()));
    }
    let (month, months) = match rest.strip_prefix('Q') {
        Some(q) => {
            let q: i8 = q.parse().map_err(|_| bad())?;
            if !(1..=4).contains(&q) {
                return Err(bad());
            }
            ((q - 1) * 3 + 1, 3)
        }
        None => {
            let m: i8 = rest.parse().map_err(|_| bad())?;
            if !(1..=12).contains(&m) {
                return Err(bad());
            }
            (m, 1)
        }
    };
    let start: Zoned =
        jiff::civil::date(year, month, 1).at(0, 0, 0, 0).to_zoned(tz.clone()).map_err(|e| e.to_string())?;
    let end = start.checked_add((months as i64).months()).map_err(|e| e.to_string())?;
    Ok((start.timestamp().as_millisecond(), end.timestamp().as_millisecond()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    /// 2026-11-01T00:00:00Z
    const T0: i64 = 1_793_491_200_000;

    fn slo(method: Method, objective: f64) -> Slo {
        Slo {
            name: "s".into(),
            method,
            objective,
            window: Window::Rolling { ms: 30 * DAY },
            unknown: Unknown::Exclude,
            rules: default_rules(),
            hours: None,
        }
    }

    fn default_rules() -> Vec<BurnRule> {
        let r = |s: &str, l: i64, sh: i64, f: f64| BurnRule {
            severity: s.into(),
            long_ms: l * 60_000,
            short_ms: sh * 60_000,
            factor: f,
        };
        vec![r("page", 60, 5, 14.4), r("page", 360, 30, 6.0), r("ticket", 1440, 120, 3.0), r("ticket", 4320, 360, 1.0)]
    }

    fn up(start: i64, end: Option<i64>) -> Period {
        Period { status: PeriodStatus::Up, start_ms: start, end_ms: end }
    }
    fn down(start: i64, end: i64) -> Period {
        Period { status: PeriodStatus::Down, start_ms: start, end_ms: Some(end) }
    }

    /// One check, up for 30 days except the given outages; series covering the 30 days.
    fn series_with_outages(outages: &[(i64, i64)], excluded: &[(i64, i64)]) -> (Series, i64) {
        let from = T0;
        let now = T0 + 30 * DAY;
        let mut periods = Vec::new();
        let mut t = from;
        for (a, b) in outages {
            periods.push(up(t, Some(*a)));
            periods.push(down(*a, *b));
            t = *b;
        }
        periods.push(up(t, None));
        (build_series(from, now, &[periods], excluded, &[]), now)
    }

    fn calendar_month(objective: f64) -> Slo {
        Slo { window: Window::Calendar { months: 1, tz: TimeZone::UTC }, ..slo(Method::Time, objective) }
    }

    /// A month still running is judged against the whole month. November 2026 has 30 days: a
    /// 99.9 % budget of 0.001 × 30 × 1440 = 43.2 minutes. A 42-minute outage on the 29th, seen at
    /// 12:00 that day: 1.2 minutes left, not breached. At the burn rate so far (42 minutes in
    /// 28.5 days) the 1.2 minutes last 1.2 / 42 × 28.5 days = 0.8143 days = 19 h 32 min 34 s,
    /// so they run out on the 30th at 07:32:34, before the month ends: at risk.
    #[test]
    fn a_running_month_is_judged_against_the_whole_month() {
        const MIN: i64 = 60_000;
        let outage = (T0 + 28 * DAY + 10 * 60 * MIN, T0 + 28 * DAY + 10 * 60 * MIN + 42 * MIN);
        let (series, _) = series_with_outages(&[outage], &[]);
        let now = T0 + 28 * DAY + 12 * 60 * MIN;
        let v = calendar_month(0.999).evaluate(&series, now);
        assert_eq!((v.window_start_ms, v.window_end_ms), (T0, T0 + 30 * DAY));
        assert!((v.budget_allowed / MIN as f64 - 43.2).abs() < 1e-9, "{}", v.budget_allowed / MIN as f64);
        assert_eq!(v.budget_spent, (42 * MIN) as f64);
        let left_minutes = (v.budget_allowed - v.budget_spent) / MIN as f64;
        assert!((left_minutes - 1.2).abs() < 1e-9, "{left_minutes}");
        assert_eq!(v.status, Status::AtRisk);
        assert!(v.met, "not breached");
        let forecast = v.forecast_exhausted_ms.unwrap();
        let by_hand = now + (19 * 3600 + 32 * 60 + 34) * 1000;
        assert!((forecast - by_hand).abs() < 1000, "{} vs {}", forecast, by_hand);
        // Two more minutes of outage breach the whole month's budget.
        let (series, _) = series_with_outages(&[(outage.0, outage.1 + 2 * MIN)], &[]);
        let v = calendar_month(0.999).evaluate(&series, now);
        assert_eq!((v.status, v.met), (Status::Breached, false));
        // A quiet month so far: on track, nothing forecast.
        let (series, _) = series_with_outages(&[], &[]);
        let v = calendar_month(0.999).evaluate(&series, now);
        assert_eq!((v.status, v.forecast_exhausted_ms), (Status::OnTrack, None));
        // Ten minutes on the 1st, seen on the 2nd: 10 minutes a day would spend 43.2 minutes in
        // 4.32 days: at risk. The same ten minutes seen on the 29th (10 in 28.5 days): on track.
        let early = (T0 + 3_600_000, T0 + 3_600_000 + 10 * MIN);
        let (series, _) = series_with_outages(&[early], &[]);
        assert_eq!(calendar_month(0.999).evaluate(&series, T0 + DAY).status, Status::AtRisk);
        assert_eq!(calendar_month(0.999).evaluate(&series, now).status, Status::OnTrack);
        // Once the month is over the same figures are plain met or breached.
        let v = calendar_month(0.999).evaluate(&series, T0 + 30 * DAY - 1);
        assert_eq!(v.status, Status::OnTrack, "the last millisecond is still running");
        let whole = calendar_month(0.999).assess(&series, T0, T0 + 30 * DAY);
        assert_eq!(whole.status, Status::Met);
    }

    /// One problem, one page: 30 seconds of a failing check on a fresh install (nothing known
    /// before) are no 5-minute burn; once the 5 minutes are observed, the same failure rate
    /// alerts.
    #[test]
    fn a_burn_alert_needs_its_short_window_observed() {
        let now = T0 + 10 * DAY;
        let s = slo(Method::Time, 0.999);
        let young = |since: i64| {
            let periods = vec![up(since, Some(now - 30_000)), down(now - 30_000, now)];
            build_series(now - 30 * DAY, now, &[periods], &[], &[])
        };
        // Installed 90 s ago: 60 s up, 30 s down.
        let v = s.evaluate(&young(now - 90_000), now);
        assert!(
            v.burn_rates.iter().any(|(w, r)| *w == 5 * MINUTE_MS && *r > 14.4),
            "the rate is high: {:?}",
            v.burn_rates
        );
        assert!(v.alerts.is_empty(), "but 5 minutes were not observed: {:?}", v.alerts);
        // Up for ten hours before the same 30 s: the windows are observed. 30 s down is, over
        // 1 h, 30 / 3,600 = 0.83 % errors, 8.3x a 0.1 % budget (below 14.4); over 6 h
        // 30 / 21,600 = 0.14 %, 1.4x (below 6); over the 10 observed hours of 1 d and 3 d,
        // 30 / 36,000 = 0.083 %, 0.83x (below 3 and 1): no alert. A blip is not a page.
        let v = s.evaluate(&young(now - 10 * 3_600_000), now);
        assert!(v.alerts.is_empty(), "{:?}", v.alerts);
        // Failing for the whole last 5 minutes and an hour observed: 1h rate 5/60 / 0.001 = 83x.
        let periods = vec![up(now - 2 * 3_600_000, Some(now - 5 * MINUTE_MS)), down(now - 5 * MINUTE_MS, now)];
        let series = build_series(now - 30 * DAY, now, &[periods], &[], &[]);
        let v = s.evaluate(&series, now);
        assert!(v.alerts.iter().any(|a| a.factor == 14.4), "{:?}", v.alerts);
    }

    /// A young install: 24 seconds of data in a 30-day window say "not enough data yet" rather
    /// than "achieved 0 %, budget left −99,900 %"; three days of 30 (a tenth) are a verdict.
    #[test]
    fn a_young_rolling_window_says_not_enough_data_yet() {
        let now = T0 + 10 * DAY;
        let s = slo(Method::Time, 0.999);
        let young = |since: i64| {
            let periods = vec![down(since, now)];
            build_series(now - 30 * DAY, now, &[periods], &[], &[])
        };
        let v = s.evaluate(&young(now - 24_000), now);
        assert_eq!(v.status, Status::NotEnoughData);
        assert_eq!(s.observed_ms(&v), 24_000);
        assert_eq!(s.evaluate(&young(now - 3 * DAY), now).status, Status::Breached);
    }

    /// A period without any data is "no data": neither met nor breached.
    #[test]
    fn a_period_without_data_is_no_data_never_met() {
        let nothing = build_series(T0, T0 + 30 * DAY, &[vec![]], &[], &[]);
        let a = calendar_month(0.999).assess(&nothing, T0, T0 + 30 * DAY);
        assert_eq!((a.status, a.met, a.achieved), (Status::NoData, false, None));
        let running = calendar_month(0.999).evaluate(&nothing, T0 + 10 * DAY);
        assert_eq!((running.status, running.met), (Status::NoData, false));
        let events = slo(Method::Events, 0.999).assess(&nothing, T0, T0 + 30 * DAY);
        assert_eq!(events.status, Status::NoData);
    }

    #[test]
    fn downtime_of_43_2_minutes_in_30_days_is_exactly_99_9_percent() {
        let start = T0 + 10 * DAY + 7_777; // not minute-aligned on purpose
        let (series, now) = series_with_outages(&[(start, start + 2_592_000)], &[]);
        let v = slo(Method::Time, 0.999).evaluate(&series, now);
        assert_eq!(v.counts.down_ms, 2_592_000);
        assert!((v.achieved.unwrap() - 0.999).abs() < 1e-12, "{:?}", v.achieved);
        assert!(v.met, "exactly on the objective is met");
        assert!(v.budget_remaining_ratio.abs() < 1e-9, "{}", v.budget_remaining_ratio);
        // One millisecond more breaches it.
        let (series, now) = series_with_outages(&[(start, start + 2_592_001)], &[]);
        let v = slo(Method::Time, 0.999).evaluate(&series, now);
        assert!(!v.met);
        assert!(v.budget_remaining_ratio < 0.0);
    }

    #[test]
    fn table_of_objectives_and_downtime() {
        // (objective, downtime minutes in 30 days, met)
        let rows = [
            (0.99, 432.0, true),
            (0.99, 433.0, false),
            (0.995, 216.0, true),
            (0.9999, 4.32, true),
            (0.9999, 4.33, false),
        ];
        for (objective, minutes, met) in rows {
            let a = T0 + DAY;
            let (series, now) = series_with_outages(&[(a, a + (minutes * 60_000.0) as i64)], &[]);
            let v = slo(Method::Time, objective).evaluate(&series, now);
            assert_eq!(v.met, met, "objective {objective}, {minutes} minutes down: {v:?}");
        }
    }

    #[test]
    fn maintenance_changes_the_achieved_figure_by_exactly_its_minutes() {
        let a = T0 + 3 * DAY;
        let outage = (a, a + 90 * 60_000); // 90 minutes down
        let (plain, now) = series_with_outages(&[outage], &[]);
        let maint = (a + 30 * 60_000, a + 60 * 60_000); // 30 of them planned
        let (with_maint, _) = series_with_outages(&[outage], &[maint]);
        let s = slo(Method::Time, 0.999);
        let (v1, v2) = (s.evaluate(&plain, now), s.evaluate(&with_maint, now));
        assert_eq!(v1.counts.down_ms - v2.counts.down_ms, 30 * 60_000);
        assert_eq!(v2.counts.excluded_ms, 30 * 60_000);
        let window = 30.0 * DAY as f64;
        assert!((v1.achieved.unwrap() - (1.0 - 90.0 * 60_000.0 / window)).abs() < 1e-12);
        assert!((v2.achieved.unwrap() - (1.0 - 60.0 * 60_000.0 / (window - 30.0 * 60_000.0))).abs() < 1e-12);
    }

    #[test]
    fn unknown_time_is_reported_and_counted_by_policy() {
        let from = T0;
        let now = T0 + 30 * DAY;
        // Data only from day 10 on: 10 days unknown, then a 60-minute outage.
        let o = T0 + 20 * DAY;
        let periods = vec![up(T0 + 10 * DAY, Some(o)), down(o, o + 3_600_000), up(o + 3_600_000, None)];
        let series = build_series(from, now, &[periods], &[], &[]);
        let mut s = slo(Method::Time, 0.999);
        let v = s.evaluate(&series, now);
        assert_eq!(v.counts.unknown_ms, 10 * DAY as u64);
        assert_eq!(v.sli.valid, 20.0 * DAY as f64, "unknown time is not valid time by default");
        s.unknown = Unknown::Bad;
        assert_eq!(s.evaluate(&series, now).sli.bad, (10 * DAY + 3_600_000) as f64);
        s.unknown = Unknown::Good;
        assert_eq!(s.evaluate(&series, now).sli.bad, 3_600_000.0);
    }

    #[test]
    fn a_service_is_down_when_any_of_its_checks_is() {
        let from = T0;
        let to = T0 + 10 * MINUTE_MS;
        let a = vec![
            up(from, Some(from + 2 * MINUTE_MS)),
            down(from + 2 * MINUTE_MS, from + 4 * MINUTE_MS),
            up(from + 4 * MINUTE_MS, None),
        ];
        let b = vec![
            up(from, Some(from + 3 * MINUTE_MS)),
            down(from + 3 * MINUTE_MS, from + 6 * MINUTE_MS),
            up(from + 6 * MINUTE_MS, None),
        ];
        let down = build_series(from, to, &[a, b], &[], &[]).range(from, to).down_ms;
        assert_eq!(down, 4 * MINUTE_MS as u64, "the union of 2..4 and 3..6");
    }

    /// Events: a constant error ratio gives a constant burn rate.
    fn series_with_error_ratio(ratio_per_mille: u64, minutes_back: i64, now: i64) -> Series {
        let from = now - 4320 * MINUTE_MS;
        let events: Vec<MinuteEvents> = (0..4320)
            .map(|i| {
                let minute_ms = from + i * MINUTE_MS;
                let bad = if minute_ms >= now - minutes_back * MINUTE_MS { ratio_per_mille } else { 0 };
                MinuteEvents { minute_ms, events: 1000, bad_events: bad }
            })
            .collect();
        let checks = vec![vec![up(from, None)]];
        build_series(from, now, &checks, &[], &events)
    }

    #[test]
    fn each_burn_rule_fires_at_its_threshold_and_not_just_below() {
        let now = T0 + 40 * DAY;
        let s = slo(Method::Events, 0.999); // budget: 1 bad per 1000
                                            // (rule index, error ratio per mille over the rule's long window) -> burn = ratio / 1
        let rows = [(0usize, 60i64, 14.4f64), (1, 360, 6.0), (2, 1440, 3.0), (3, 4320, 1.0)];
        for (rule, long_minutes, factor) in rows {
            // Bad events exactly at the factor over the long window (and so the short one).
            let at = series_with_error_ratio(factor.ceil() as u64, long_minutes, now);
            let exact = if factor.fract() == 0.0 { Some(at) } else { None };
            if let Some(series) = exact {
                let v = s.evaluate(&series, now);
                assert!(
                    v.alerts.iter().any(|a| a.long_ms == long_minutes * MINUTE_MS),
                    "rule {rule} at {factor}: {:?}",
                    v.burn_rates
                );
            }
            let below = series_with_error_ratio(factor.ceil() as u64 - 1, long_minutes, now);
            let v = s.evaluate(&below, now);
            assert!(
                !v.alerts.iter().any(|a| a.long_ms == long_minutes * MINUTE_MS && a.factor == factor),
                "rule {rule} fired below {factor}: {:?}",
                v.alerts
            );
        }
        // 14.4 is not an integer per mille: check the boundary with 144 per 10000.
        let from = now - 60 * MINUTE_MS;
        let ev = |bad: u64| -> Series {
            let events: Vec<MinuteEvents> = (0..60)
                .map(|i| MinuteEvents { minute_ms: from + i * MINUTE_MS, events: 10_000, bad_events: bad })
                .collect();
            build_series(from, now, &[vec![up(from, None)]], &[], &events)
        };
        let fast = |bad| s.evaluate(&ev(bad), now).alerts.iter().any(|a| a.factor == 14.4);
        assert!(fast(144), "14.4x fires");
        assert!(!fast(143), "14.3x does not");
    }

    #[test]
    fn burn_rate_is_bad_ratio_over_allowed() {
        let now = T0 + 40 * DAY;
        let series = series_with_error_ratio(2, 4320, now);
        let v = slo(Method::Events, 0.999).evaluate(&series, now);
        for (_, rate) in &v.burn_rates {
            assert!((rate - 2.0).abs() < 1e-9, "{:?}", v.burn_rates);
        }
    }

    #[test]
    fn a_calendar_month_across_dst_has_the_right_minutes() {
        let oslo = TimeZone::get("Europe/Oslo").unwrap();
        let march = "2026-03-15T12:00:00Z".parse::<Timestamp>().unwrap().as_millisecond();
        let (a, b) = calendar_period(march, 1, &oslo);
        assert_eq!((b - a) / MINUTE_MS, 31 * 1440 - 60, "spring forward: one hour short");
        let october = "2026-10-15T12:00:00Z".parse::<Timestamp>().unwrap().as_millisecond();
        let (a, b) = calendar_period(october, 1, &oslo);
        assert_eq!((b - a) / MINUTE_MS, 31 * 1440 + 60, "fall back: one hour long");
        assert_eq!(named_period("2026-10", &oslo).unwrap(), (a, b));
        let (qa, qb) = named_period("2026-Q4", &TimeZone::UTC).unwrap();
        assert_eq!((qb - qa) / DAY, 92);
        assert!(named_period("2026-13", &oslo).is_err());
        // ISO week 48 of 2026: Monday 23 November 00:00 CET (22 Nov 23:00 UTC), seven days.
        let (wa, wb) = named_period("2026-W48", &oslo).unwrap();
        assert_eq!(wa, "2026-11-22T23:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond());
        assert_eq!(wb - wa, 7 * 86_400_000);
        assert!(named_period("2026-W54", &oslo).is_err());
    }

    /// Window edges are exact to the millisecond. At 12:03:30.250 a "5m" burn window is
    /// [11:58:30.250, 12:03:30.250): down since 12:00:00 is 3 min 30.25 s = 210,250 ms of its
    /// 300,000 ms, a bad ratio of 0.700833.. and against a 99.9 % objective a 700.83x burn (a
    /// window rounded out to 11:58:00 would say 210,250 / 330,250 = 636.6x). A "30d" window is
    /// 2,592,000,000 ms: an outage from 29 days 23 h 59 min 59.5 s ago to 29 days 23 h 59 min
    /// ago straddles its start and counts 500 ms of its 1,000.
    #[test]
    fn window_edges_are_exact_to_the_millisecond() {
        let now = T0 + 12 * 3_600_000 + 3 * MINUTE_MS + 30_250;
        let down_from = T0 + 12 * 3_600_000;
        let periods = vec![up(T0 - 40 * DAY, Some(down_from)), down(down_from, now + 1)];
        let series = build_series(T0 - 40 * DAY, now, &[periods], &[], &[]);
        let s = slo(Method::Time, 0.999);
        let rate = s.burn_rate(&series, now - 5 * MINUTE_MS, now);
        let expected = 210_250.0 / 300_000.0 / 0.001;
        assert!((rate - expected).abs() < 1e-9, "{rate} vs {expected}");

        let mut rolling = s.clone();
        rolling.window = Window::Rolling { ms: 30 * DAY };
        assert_eq!(rolling.window_at(now), (now - 2_592_000_000, now));
        let edge = now - 30 * DAY;
        let periods = vec![up(T0 - 40 * DAY, Some(edge - 500)), down(edge - 500, edge + 500), up(edge + 500, None)];
        let series = build_series(T0 - 40 * DAY, now, &[periods], &[], &[]);
        let v = rolling.evaluate(&series, now);
        assert_eq!((v.window_start_ms, v.counts.down_ms), (edge, 500));
        assert_eq!(v.sli.valid, 2_592_000_000.0);
    }

    #[test]
    fn series_ranges_are_prefix_sums() {
        let minutes: Vec<Counts> = (0..100).map(|i| Counts { events: i, ..Default::default() }).collect();
        let s = Series::new(T0, &minutes);
        assert_eq!(s.range(T0 + 10 * MINUTE_MS, T0 + 20 * MINUTE_MS).events, (10..20).sum::<u64>());
        // Beyond the series: unknown time.
        let c = s.range(T0 - MINUTE_MS, T0);
        assert_eq!((c.events, c.unknown_ms), (0, MINUTE_MS as u64));
    }
}
