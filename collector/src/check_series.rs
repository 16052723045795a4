//! The per-check series of `/metrics` (`vakt_check_up`, `vakt_check_degraded`,
//! `vakt_check_latency_seconds`, `vakt_check_cert_days_left`), kept compactly: one small cell
//! per check (a few dozen bytes of counters), turned into metric families only when scraped.
//! A fleet has tens of thousands of checks; the generic metric vectors cost a KiB or more each.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use std::collections::HashMap;
use std::sync::RwLock;

/// Upper bounds of the latency histogram, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    /// 1 up, 0 down, absent while unknown.
    up: Option<bool>,
    degraded: bool,
    cert_days_left: Option<f32>,
    /// Observations per bucket (not cumulative); the last is above every bound.
    buckets: [u32; LATENCY_BUCKETS.len() + 1],
    count: u64,
    sum: f64,
}

pub struct CheckSeries {
    cells: RwLock<HashMap<Box<str>, Cell>>,
    descs: Vec<Desc>,
}

const FAMILIES: [(&str, &str); 4] = [
    ("vakt_check_up", "1 when the check is up, 0 when it is down (absent while unknown)"),
    ("vakt_check_degraded", "1 when the check is up but its last result was degraded, else 0"),
    ("vakt_check_latency_seconds", "Duration of probe runs as the agents reported them"),
    ("vakt_check_cert_days_left", "Days until the checked TLS certificate expires (last result)"),
];

impl Default for CheckSeries {
    fn default() -> Self {
        let descs = FAMILIES
            .iter()
            .filter_map(|(name, help)| {
                Desc::new(name.to_string(), help.to_string(), vec!["check".into()], HashMap::new()).ok()
            })
            .collect();
        CheckSeries { cells: RwLock::default(), descs }
    }
}

impl CheckSeries {
    fn with<R>(&self, check: &str, f: impl FnOnce(&mut Cell) -> R) -> R {
        let mut cells = self.cells.write().unwrap_or_else(|p| p.into_inner());
        if let Some(cell) = cells.get_mut(check) {
            return f(cell);
        }
        let mut cell = Cell::default();
        let r = f(&mut cell);
        cells.insert(check.into(), cell);
        r
    }

    /// Up (with degraded), down, or unknown (`None`: the up and degraded series go away).
    pub fn set_state(&self, check: &str, up: Option<bool>, degraded: bool) {
        self.with(check, |c| {
            c.up = up;
            c.degraded = up == Some(true) && degraded;
        });
    }

    pub fn observe(&self, check: &str, seconds: &[f64]) {
        self.with(check, |c| {
            for &s in seconds {
                let i = LATENCY_BUCKETS.iter().position(|b| s <= *b).unwrap_or(LATENCY_BUCKETS.len());
                c.buckets[i] = c.buckets[i].saturating_add(1);
                c.count += 1;
                c.sum += s;
            }
        });
    }

    pub fn set_cert_days_left(&self, check: &str, days: f64) {
        self.with(check, |c| c.cert_days_left = Some(days as f32));
    }
}

fn labelled(check: &str) -> Metric {
    let mut label = LabelPair::default();
    label.set_name("check".into());
    label.set_value(check.to_string());
    let mut m = Metric::default();
    m.set_label(vec![label]);
    m
}

fn gauge(check: &str, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = labelled(check);
    m.set_gauge(g);
    m
}

impl Collector for CheckSeries {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let cells = self.cells.read().unwrap_or_else(|p| p.into_inner());
        let mut checks: Vec<(&str, &Cell)> = cells.iter().map(|(k, v)| (k.as_ref(), v)).collect();
        checks.sort_unstable_by_key(|(k, _)| *k);
        let family = |i: usize, kind: MetricType, metrics: Vec<Metric>| {
            let mut f = MetricFamily::default();
            f.set_name(FAMILIES[i].0.into());
            f.set_help(FAMILIES[i].1.into());
            f.set_field_type(kind);
            f.set_metric(metrics);
            f
        };
        let up = checks.iter().filter_map(|(k, c)| c.up.map(|u| gauge(k, if u { 1.0 } else { 0.0 }))).collect();
        let degraded = checks
            .iter()
            .filter(|(_, c)| c.up.is_some())
            .map(|(k, c)| gauge(k, if c.degraded { 1.0 } else { 0.0 }))
            .collect();
        let latency = checks
            .iter()
            .filter(|(_, c)| c.count > 0)
            .map(|(k, c)| {
                let mut cumulative = 0u64;
                let buckets = LATENCY_BUCKETS
                    .iter()
                    .zip(c.buckets)
                    .map(|(bound, n)| {
                        cumulative += u64::from(n);
                        let mut b = Bucket::default();
                        b.set_upper_bound(*bound);
                        b.set_cumulative_count(cumulative);
                        b
                    })
                    .collect();
                let mut h = Histogram::default();
                h.set_sample_count(c.count);
                h.set_sample_sum(c.sum);
                h.set_bucket(buckets);
                let mut m = labelled(k);
                m.set_histogram(h);
                m
            })
            .collect();
        let cert = checks.iter().filter_map(|(k, c)| c.cert_days_left.map(|d| gauge(k, f64::from(d)))).collect();
        [
            family(0, MetricType::GAUGE, up),
            family(1, MetricType::GAUGE, degraded),
            family(2, MetricType::HISTOGRAM, latency),
            family(3, MetricType::GAUGE, cert),
        ]
        .into_iter()
        .filter(|f| !f.get_metric().is_empty())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_generic_vectors() {
        let s = CheckSeries::default();
        s.set_state("web", Some(true), true);
        s.set_state("db", None, false);
        s.observe("web", &[0.003, 0.2, 42.0]);
        let registry = prometheus::Registry::new();
        registry.register(Box::new(s)).unwrap();
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("vakt_check_up{check=\"web\"} 1\n"), "{text}");
        assert!(text.contains("vakt_check_degraded{check=\"web\"} 1\n"), "{text}");
        assert!(!text.contains("check=\"db\""), "unknown: absent\n{text}");
        assert!(text.contains("vakt_check_latency_seconds_bucket{check=\"web\",le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("vakt_check_latency_seconds_bucket{check=\"web\",le=\"0.25\"} 2\n"), "{text}");
        assert!(text.contains("vakt_check_latency_seconds_bucket{check=\"web\",le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("vakt_check_latency_seconds_count{check=\"web\"} 3\n"), "{text}");
        assert!(!text.contains("vakt_check_cert_days_left"), "absent until a certificate was read");
    }
}
