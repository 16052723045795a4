//! A subset of RFC 5545 recurrence rules, enough for maintenance windows:
//! `FREQ=DAILY|WEEKLY|MONTHLY`, `INTERVAL=n`, `BYDAY=MO,TU,...` (weekly), `BYMONTHDAY=n`
//! (monthly), `COUNT=n`, `UNTIL=YYYYMMDD[THHMMSS]`. Occurrences are local wall-clock times in
//! the window's time zone, so "every Sunday 02:00" stays 02:00 across daylight-saving changes.

use jiff::civil::{DateTime, Weekday};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freq {
    Daily,
    Weekly,
    Monthly,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub freq: Freq,
    pub interval: i64,
    pub by_day: Vec<Weekday>,
    pub by_month_day: Option<i8>,
    pub count: Option<u32>,
    pub until: Option<DateTime>,
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

impl Rule {
    pub fn parse(text: &str) -> Result<Rule, String> {
        let mut freq = None;
        let mut rule =
            Rule { freq: Freq::Daily, interval: 1, by_day: Vec::new(), by_month_day: None, count: None, until: None };
        for part in text.trim().trim_start_matches("RRULE:").split(';').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| format!("rrule part {part:?} is not KEY=VALUE"))?;
            match k {
                "FREQ" => {
                    freq = Some(match v {
                        "DAILY" => Freq::Daily,
                        "WEEKLY" => Freq::Weekly,
                        "MONTHLY" => Freq::Monthly,
                        _ => return Err(format!("rrule FREQ={v} is not supported (DAILY, WEEKLY, MONTHLY)")),
                    })
                }
                "INTERVAL" => {
                    rule.interval =
                        v.parse().ok().filter(|n: &i64| *n >= 1).ok_or("rrule INTERVAL must be a positive number")?
                }
                "BYDAY" => {
                    rule.by_day = v
                        .split(',')
                        .map(|d| weekday(d).ok_or(format!("rrule BYDAY {d:?} is not MO..SU")))
                        .collect::<Result<_, _>>()?
                }
                "BYMONTHDAY" => {
                    rule.by_month_day = Some(
                        v.parse().ok().filter(|d: &i8| (1..=31).contains(d)).ok_or("rrule BYMONTHDAY must be 1..31")?,
                    )
                }
                "COUNT" => rule.count = Some(v.parse().map_err(|_| "rrule COUNT must be a number")?),
                "UNTIL" => {
                    let v = v.trim_end_matches('Z');
                    let dt = if v.len() == 8 {
                        format!("{}-{}-{}T23:59:59", &v[..4], &v[4..6], &v[6..8])
                    } else if v.len() == 15 {
                        format!("{}-{}-{}T{}:{}:{}", &v[..4], &v[4..6], &v[6..8], &v[9..11], &v[11..13], &v[13..15])
                    } else {
                        return Err(format!("rrule UNTIL={v} is not YYYYMMDD or YYYYMMDDTHHMMSS"));
                    };
                    rule.until = Some(dt.parse().map_err(|_| format!("rrule UNTIL={v} is not a date"))?);
                }
                other => return Err(format!("rrule part {other} is not supported")),
            }
        }
        rule.freq = freq.ok_or("rrule needs FREQ")?;
        if rule.freq != Freq::Weekly && !rule.by_day.is_empty() {
            return Err("rrule BYDAY is supported with FREQ=WEEKLY only".into());
        }
        Ok(rule)
    }

    /// Local start times of occurrences from `dtstart` on, while `keep_going` says so.
    pub fn occurrences(&self, dtstart: DateTime, mut keep_going: impl FnMut(DateTime) -> bool) {
        let mut emitted = 0u32;
        let mut emit = |t: DateTime| -> bool {
            if self.until.is_some_and(|u| t > u) || self.count.is_some_and(|c| emitted >= c) {
                return false;
            }
            if t < dtstart {
                return true; // e.g. a BYDAY earlier in dtstart's week
            }
            emitted += 1;
            keep_going(t)
        };
        let time = dtstart.time();
        match self.freq {
            Freq::Daily => {
                for n in 0..100_000i64 {
                    let Ok(day) = dtstart.date().checked_add(jiff::Span::new().days(n * self.interval)) else { return };
                    if !emit(day.to_datetime(time)) {
                        return;
                    }
                }
            }
            Freq::Weekly => {
                let days = if self.by_day.is_empty() { vec![dtstart.weekday()] } else { self.by_day.clone() };
                // Monday of dtstart's week.
                let Ok(monday) = dtstart
                    .date()
                    .checked_sub(jiff::Span::new().days(i64::from(dtstart.weekday().to_monday_zero_offset())))
                else {
                    return;
                };
                for week in 0..20_000i64 {
                    let Ok(start) = monday.checked_add(jiff::Span::new().weeks(week * self.interval)) else { return };
                    let mut ds: Vec<_> = days
                        .iter()
                        .filter_map(|d| {
                            start.checked_add(jiff::Span::new().days(i64::from(d.to_monday_zero_offset()))).ok()
                        })
                        .collect();
                    ds.sort();
                    for d in ds {
                        if !emit(d.to_datetime(time)) {
                            return;
                        }
                    }
                }
            }
            Freq::Monthly => {
                let day = self.by_month_day.unwrap_or(dtstart.day());
                let first = dtstart.date().first_of_month();
                for n in 0..5_000i64 {
                    let Ok(month) = first.checked_add(jiff::Span::new().months(n * self.interval)) else { return };
                    if day > month.days_in_month() {
                        continue; // RFC 5545: invalid dates are skipped
                    }
                    let Ok(d) = jiff::civil::Date::new(month.year(), month.month(), day) else { continue };
                    if !emit(d.to_datetime(time)) {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(rule: &str, start: &str, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        Rule::parse(rule).unwrap().occurrences(start.parse().unwrap(), |t| {
            out.push(t.to_string());
            out.len() < n
        });
        out
    }

    #[test]
    fn weekly_by_day() {
        assert_eq!(
            first("FREQ=WEEKLY;BYDAY=SU,WE", "2026-11-25T02:00", 4),
            ["2026-11-25T02:00:00", "2026-11-29T02:00:00", "2026-12-02T02:00:00", "2026-12-06T02:00:00"]
        );
        assert_eq!(
            first("FREQ=WEEKLY;INTERVAL=2", "2026-11-25T22:30", 2),
            ["2026-11-25T22:30:00", "2026-12-09T22:30:00"]
        );
    }

    #[test]
    fn daily_count_and_until() {
        assert_eq!(first("FREQ=DAILY;COUNT=2", "2026-01-30T01:00", 10).len(), 2);
        assert_eq!(first("FREQ=DAILY;UNTIL=20260201", "2026-01-30T01:00", 10).len(), 3);
    }

    #[test]
    fn monthly_skips_missing_days() {
        assert_eq!(
            first("FREQ=MONTHLY;BYMONTHDAY=31", "2026-01-31T03:00", 3),
            ["2026-01-31T03:00:00", "2026-03-31T03:00:00", "2026-05-31T03:00:00"]
        );
    }

    #[test]
    fn bad_rules_say_why() {
        assert!(Rule::parse("FREQ=YEARLY").unwrap_err().contains("not supported"));
        assert!(Rule::parse("BYDAY=MO").unwrap_err().contains("needs FREQ"));
        assert!(Rule::parse("FREQ=WEEKLY;BYDAY=XX").unwrap_err().contains("MO..SU"));
        assert!(Rule::parse("FREQ=DAILY;BYDAY=MO").is_err());
    }
}
