//! Host probe: a metric of the agent's own machine, read with sysinfo. The main value is
//! compared with `max_value` (failure), `warn_value` (degraded) and `min_value` (failure below).
//!
//! | target | main value | also reported |
//! | --- | --- | --- |
//! | `cpu` | used percent since the last run | — |
//! | `memory`, `swap` | used percent | used and total bytes |
//! | `disk:/mount` | used percent | used and total bytes |
//! | `load1`, `load5`, `load15` | load average | — |
//! | `uptime` | seconds | — |
//! | `network` | bytes received + sent since boot | received and sent bytes |
//! | `process:NAME` | processes running with that exact name | — |

use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use sysinfo::{Disks, Networks, ProcessRefreshKind, ProcessesToUpdate, System};
use vakt_config::wire::CheckSpec;

use super::{BoxFuture, BuildError, Probe, ProbeContext, ProbeResult};

/// One sysinfo reader shared by all host checks.
#[derive(Default)]
pub struct HostReader {
    system: Mutex<Option<(System, Option<Instant>)>>,
}

pub struct HostProbe {
    target: String,
    reader: Arc<HostReader>,
    max: Option<f64>,
    warn: Option<f64>,
    min: Option<f64>,
}

struct Reading {
    main: f64,
    extra: Vec<(&'static str, f64)>,
    unit: &'static str,
}

fn percent(used: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    }
}

impl HostReader {
    fn read(&self, target: &str) -> Result<Reading, String> {
        let mut guard = self.system.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some((System::new().map_err(|e| format!("cannot read system information: {e}"))?, None));
        }
        let Some((sys, last_cpu)) = guard.as_mut() else { return Err("no system reader".into()) };
        let reading = match target {
            "cpu" => {
                // Usage between two refreshes: since the previous run, or over the minimum
                // interval the first time.
                if last_cpu.is_none_or(|t| t.elapsed() < sysinfo::MINIMUM_CPU_UPDATE_INTERVAL) {
                    sys.refresh_cpu_usage();
                    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
                }
                sys.refresh_cpu_usage();
                *last_cpu = Some(Instant::now());
                Reading { main: f64::from(sys.global_cpu_usage()), extra: vec![], unit: "percent" }
            }
            "memory" => {
                sys.refresh_memory();
                let (used, total) = (sys.used_memory(), sys.total_memory());
                Reading {
                    main: percent(used, total),
                    extra: vec![("used_bytes", used as f64), ("total_bytes", total as f64)],
                    unit: "percent",
                }
            }
            "swap" => {
                sys.refresh_memory();
                let (used, total) = (sys.used_swap(), sys.total_swap());
                Reading {
                    main: percent(used, total),
                    extra: vec![("used_bytes", used as f64), ("total_bytes", total as f64)],
                    unit: "percent",
                }
            }
            "load1" | "load5" | "load15" => {
                let l = System::load_average().map_err(|e| format!("cannot read the load average: {e}"))?;
                let v = match target {
                    "load1" => l.one,
                    "load5" => l.five,
                    _ => l.fifteen,
                };
                Reading { main: v, extra: vec![], unit: "" }
            }
            "uptime" => {
                let up = System::uptime().map_err(|e| format!("cannot read the uptime: {e}"))?;
                Reading { main: up as f64, extra: vec![], unit: "seconds" }
            }
            "network" => {
                let nets =
                    Networks::new_with_refreshed_list().map_err(|e| format!("cannot read network interfaces: {e}"))?;
                let (rx, tx) =
                    nets.values().fold((0u64, 0u64), |(r, t), n| (r + n.total_received(), t + n.total_transmitted()));
                Reading {
                    main: (rx + tx) as f64,
                    extra: vec![("received_bytes", rx as f64), ("transmitted_bytes", tx as f64)],
                    unit: "bytes",
                }
            }
            other => {
                if let Some(mount) = other.strip_prefix("disk:") {
                    let disks = Disks::new_with_refreshed_list().map_err(|e| format!("cannot list disks: {e}"))?;
                    let disk = disks
                        .iter()
                        .find(|d| d.mount_point() == std::path::Path::new(mount))
                        .ok_or_else(|| format!("no filesystem is mounted at {mount}"))?;
                    let total = disk.total_space();
                    let used = total.saturating_sub(disk.available_space());
                    Reading {
                        main: percent(used, total),
                        extra: vec![("used_bytes", used as f64), ("total_bytes", total as f64)],
                        unit: "percent",
                    }
                } else if let Some(name) = other.strip_prefix("process:") {
                    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, ProcessRefreshKind::nothing());
                    let n = sys.processes_by_exact_name(OsStr::new(name)).count();
                    Reading { main: n as f64, extra: vec![], unit: "" }
                } else {
                    return Err(format!("unknown host metric {other:?}"));
                }
            }
        };
        Ok(reading)
    }
}

impl HostProbe {
    pub fn new(spec: &CheckSpec, ctx: &ProbeContext) -> Result<Self, BuildError> {
        if !vakt_config::check::valid_host_target(&spec.target) {
            return Err(BuildError(format!("check {:?}: {:?} is not a host metric", spec.id, spec.target)));
        }
        let o = &spec.options;
        // A process check fails when none runs, unless told otherwise.
        let min = o.min_value.or_else(|| spec.target.starts_with("process:").then_some(1.0));
        Ok(Self { target: spec.target.clone(), reader: ctx.host.clone(), max: o.max_value, warn: o.warn_value, min })
    }

    async fn probe(&self) -> ProbeResult {
        let start = Instant::now();
        let reader = self.reader.clone();
        let target = self.target.clone();
        let reading = match tokio::task::spawn_blocking(move || reader.read(&target)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return ProbeResult::failed(Some(start.elapsed()), e),
            Err(e) => return ProbeResult::failed(Some(start.elapsed()), format!("host probe crashed: {e}")),
        };
        let shown = |v: f64| match reading.unit {
            "percent" => format!("{v:.1}%"),
            "seconds" => format!("{v:.0}s"),
            "bytes" => format!("{v:.0} bytes"),
            _ => format!("{v:.2}"),
        };
        let mut result = ProbeResult::ok(start.elapsed()).with_value("value", reading.main);
        for (name, v) in &reading.extra {
            result = result.with_value(name, *v);
        }
        let v = reading.main;
        if let Some(max) = self.max {
            if v > max {
                return result.fail(format!("{} is {} (max_value {})", self.target, shown(v), shown(max)));
            }
        }
        if let Some(min) = self.min {
            if v < min {
                return result.fail(format!("{} is {} (min_value {})", self.target, shown(v), shown(min)));
            }
        }
        if let Some(warn) = self.warn {
            if v > warn {
                return result.degrade(format!("{} is {} (warn_value {})", self.target, shown(v), shown(warn)));
            }
        }
        result
    }
}

impl Probe for HostProbe {
    fn run(&self) -> BoxFuture<'_, ProbeResult> {
        Box::pin(self.probe())
    }
}
