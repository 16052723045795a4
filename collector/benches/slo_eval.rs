//! SLO evaluation speed.
//!
//!     cargo bench -p vakt-collector --bench slo_eval
//!
//! 10,000 SLOs over 30 days of per-minute data (100 services' series of 43,200 minutes, each
//! shared by 100 SLOs with different objectives), each evaluated with its window and the four
//! default burn-rate rules (seven windows). Printed: time per full evaluation of all SLOs, ns per
//! SLO, and the time to build one service's 30-day series from state periods and rollups.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::Instant;
use vakt_collector::core::slo::{
    build_series, BurnRule, Method, MinuteEvents, Period, PeriodStatus, Slo, Unknown, Window,
};

const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;

fn rules() -> Vec<BurnRule> {
    let r = |s: &str, l: i64, sh: i64, f: f64| BurnRule {
        severity: s.into(),
        long_ms: l * MINUTE,
        short_ms: sh * MINUTE,
        factor: f,
    };
    vec![r("page", 60, 5, 14.4), r("page", 360, 30, 6.0), r("ticket", 1440, 120, 3.0), r("ticket", 4320, 360, 1.0)]
}

/// A deterministic pseudo-random service history: a few outages, probes every 30 s.
fn history(seed: u64, from: i64, to: i64) -> (Vec<Period>, Vec<MinuteEvents>) {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut periods = Vec::new();
    let mut t = from;
    while t < to {
        let up_for = (next() % (3 * DAY as u64)) as i64 + MINUTE;
        let down_for = (next() % (30 * MINUTE as u64)) as i64 + MINUTE;
        periods.push(Period { status: PeriodStatus::Up, start_ms: t, end_ms: Some((t + up_for).min(to)) });
        t += up_for;
        if t < to {
            periods.push(Period { status: PeriodStatus::Down, start_ms: t, end_ms: Some((t + down_for).min(to)) });
            t += down_for;
        }
    }
    let events = (0..(to - from) / MINUTE)
        .map(|i| MinuteEvents { minute_ms: from + i * MINUTE, events: 2, bad_events: u64::from(next() % 500 == 0) })
        .collect();
    (periods, events)
}

fn main() {
    let now: i64 = 1_795_000_000_000 - 1_795_000_000_000 % MINUTE;
    let from = now - 33 * DAY;
    let services = 100;
    let per_service = 100;

    let t = Instant::now();
    let mut series = Vec::with_capacity(services);
    for s in 0..services {
        let (periods, events) = history(s as u64 + 1, from, now);
        series.push(build_series(from, now, &[periods], &[], &events));
    }
    let build = t.elapsed() / services as u32;

    let slos: Vec<(usize, Slo)> = (0..services * per_service)
        .map(|i| {
            let objective = [0.99, 0.995, 0.999, 0.9995][i % 4];
            let method = if i % 2 == 0 { Method::Time } else { Method::Events };
            (
                i / per_service,
                Slo {
                    name: format!("slo-{i}"),
                    method,
                    objective,
                    window: Window::Rolling { ms: 30 * DAY },
                    unknown: Unknown::Exclude,
                    rules: rules(),
                    hours: None,
                },
            )
        })
        .collect();

    // Warm up once, then time full evaluations.
    let mut alerts = 0usize;
    for (s, slo) in &slos {
        alerts += slo.evaluate(&series[*s], now).alerts.len();
    }
    let rounds = 20;
    let t = Instant::now();
    let mut met = 0usize;
    for round in 0..rounds {
        for (s, slo) in &slos {
            let v = slo.evaluate(&series[*s], now - round * MINUTE);
            met += usize::from(v.met);
        }
    }
    let per_round = t.elapsed() / rounds as u32;
    println!("SLO evaluation: {} SLOs over 30 days of per-minute data, 4 burn rules each", slos.len());
    println!("  full evaluation of all SLOs: {:.2} ms (target < 1000 ms)", per_round.as_secs_f64() * 1e3);
    println!("  per SLO: {:.0} ns", per_round.as_nanos() as f64 / slos.len() as f64);
    println!("  building one service's 33-day series from periods and rollups: {:.2} ms", build.as_secs_f64() * 1e3);
    println!("  ({met} verdicts met, {alerts} alerts in the warm-up)");
}
