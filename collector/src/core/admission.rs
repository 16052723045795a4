//! **Pure.** Which samples of a batch the collector admits, and which local checks an agent may
//! announce. An agent token may report only on the checks the collector assigned to that agent
//! or that the agent announced from its own `agent.toml` (within a bound), and never rewrite
//! history before its last results beyond what its spool can hold back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use vakt_config::check::valid_id;
use vakt_config::wire::{Batch, CheckSpec, RefusedLocalCheck, RefusedSamples};
use vakt_config::CollectorConfig;

/// How far before the agent's newest stored result a new batch's samples may still lie: a probe
/// stamped at its start may end (and be sealed into a batch) after quicker probes that started
/// later, up to its timeout plus a push interval.
pub const BACKFILL_TOLERANCE_MS: i64 = 10 * 60_000;
/// How far an agent's clock may step back (its `X-Vakt-Sent-At` behind its own newest result)
/// and still have its fresh results accepted at their (earlier) times.
pub const MAX_CLOCK_STEP_BACK_MS: i64 = 3_600_000;

pub const NOT_ASSIGNED: &str = "not_assigned";
pub const BACKFILL: &str = "backfill";

/// The earliest sample time a new batch from an agent may carry: its newest stored result
/// (`high_water_ms`, agent clock) less [`BACKFILL_TOLERANCE_MS`]. When the agent's clock stands
/// behind that newest result as it sends (`sent_at_ms`, its clock stepped back), the floor
/// follows its clock back, by at most [`MAX_CLOCK_STEP_BACK_MS`]. `None`: an agent never heard
/// of, anything within the collector's general age bound goes.
pub fn backfill_floor(high_water_ms: Option<i64>, sent_at_ms: Option<i64>) -> Option<i64> {
    let high_water = high_water_ms?;
    let base = match sent_at_ms {
        Some(sent) if sent < high_water => sent.max(high_water.saturating_sub(MAX_CLOCK_STEP_BACK_MS)),
        _ => high_water,
    };
    Some(base.saturating_sub(BACKFILL_TOLERANCE_MS))
}

/// Removes from `batch` the samples the agent may not report: of checks `may_report` refuses,
/// or older than `floor`. Returns what was refused, one entry per check and reason.
pub fn admit(batch: &mut Batch, may_report: impl Fn(&str) -> bool, floor: Option<i64>) -> Vec<RefusedSamples> {
    let mut refused: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    let mut verdicts: HashMap<String, bool> = HashMap::new();
    batch.samples.retain(|s| {
        let allowed = match verdicts.get(&s.check) {
            Some(v) => *v,
            None => *verdicts.entry(s.check.clone()).or_insert_with(|| may_report(&s.check)),
        };
        let reason = if !allowed {
            NOT_ASSIGNED
        } else if floor.is_some_and(|f| s.timestamp_ms < f) {
            BACKFILL
        } else {
            return true;
        };
        *refused.entry((s.check.clone(), reason)).or_default() += 1;
        false
    });
    refused
        .into_iter()
        .map(|((check, reason), samples)| RefusedSamples {
            message: match reason {
                NOT_ASSIGNED => format!(
                    "check {check:?} is neither assigned to agent {:?} nor announced as one of its local checks",
                    batch.agent
                ),
                _ => format!(
                    "samples of check {check:?} are older than agent {:?}'s last results (a backfill into the past; is its clock right?)",
                    batch.agent
                ),
            },
            check,
            samples,
            reason: reason.to_string(),
        })
        .collect()
}

/// What becomes of an agent's announcement of its local checks.
#[derive(Debug, Default, PartialEq)]
pub struct Announcement {
    /// The local checks the agent may report on from now on (replacing those it announced
    /// before), with their specs.
    pub accepted: Vec<Arc<CheckSpec>>,
    pub refused: Vec<RefusedLocalCheck>,
}

/// Decides an agent's announced local checks: each must have a valid id, must not be a
/// collector check assigned to other agents only, must not be another agent's local check
/// (`owners`: check → agent), and the agent may announce at most `config.max_local_checks`.
/// A local check with the id of one of the agent's own assignments needs no announcement.
pub fn announce(
    config: &CollectorConfig,
    agent: &str,
    announced: &[Arc<CheckSpec>],
    owners: &HashMap<String, String>,
) -> Announcement {
    let bound = config.max_local_checks(agent);
    let mut out = Announcement::default();
    let mut refuse =
        |check: &str, reason: String| out.refused.push(RefusedLocalCheck { check: check.to_string(), reason });
    let mut seen = std::collections::HashSet::new();
    let mut accepted = Vec::new();
    for spec in announced {
        let id = spec.id.as_str();
        if !seen.insert(id) {
            continue;
        }
        if !valid_id(id) {
            refuse(id, "not a valid check id (letters, digits, '-', '_' and '.', up to 128)".into());
        } else if spec.kind == vakt_config::CheckKind::Heartbeat {
            refuse(id, "a heartbeat check lives in the collector's configuration (its job pings the collector)".into());
        } else if config.checks.contains_key(id) {
            if !config.is_assigned(agent, id) {
                refuse(id, format!("{id:?} is a check of the collector's configuration that agent {agent:?} is not assigned; rename the local check"));
            }
        } else if let Some(owner) = owners.get(id).filter(|o| o.as_str() != agent) {
            refuse(id, format!("agent {owner:?} already reports a local check {id:?}; rename this one"));
        } else if accepted.len() >= bound {
            refuse(id, format!("agent {agent:?} may announce at most {bound} local checks (max_local_checks)"));
        } else {
            accepted.push(spec.clone());
        }
    }
    out.accepted = accepted;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_config::check::CheckKind;
    use vakt_config::wire::Sample;

    const MIN: i64 = 60_000;

    fn sample(check: &str, ts: i64) -> Sample {
        Sample {
            check: check.into(),
            timestamp_ms: ts,
            success: false,
            degraded: false,
            latency_seconds: None,
            values: Default::default(),
            error: None,
            perfdata: Vec::new(),
        }
    }

    fn batch(samples: Vec<Sample>) -> Batch {
        Batch { version: 1, agent: "a".into(), instance: None, sequence: 1, samples, agent_version: None }
    }

    #[test]
    fn only_checks_the_agent_may_report_are_kept_and_refusals_are_counted_per_check() {
        let mut b = batch(vec![sample("mine", 1), sample("theirs", 2), sample("theirs", 3), sample("mine", 4)]);
        let refused = admit(&mut b, |c| c == "mine", None);
        assert_eq!(b.samples.iter().map(|s| s.timestamp_ms).collect::<Vec<_>>(), vec![1, 4]);
        assert_eq!(refused.len(), 1);
        assert_eq!(
            (refused[0].check.as_str(), refused[0].samples, refused[0].reason.as_str()),
            ("theirs", 2, NOT_ASSIGNED)
        );
    }

    #[test]
    fn backfill_before_the_floor_is_refused_and_the_floor_allows_in_flight_probes() {
        let t = 1_700_000_000_000;
        // Newest stored result at t; the agent's clock is right (sends at t + 1 s).
        let floor = backfill_floor(Some(t), Some(t + 1000));
        assert_eq!(floor, Some(t - 10 * MIN));
        let mut b = batch(vec![sample("c", t - 20 * 86_400_000), sample("c", t - 9 * MIN), sample("c", t + 500)]);
        let refused = admit(&mut b, |_| true, floor);
        assert_eq!(b.samples.len(), 2);
        assert_eq!((refused[0].samples, refused[0].reason.as_str()), (1, BACKFILL));
    }

    #[test]
    fn a_clock_stepped_back_moves_the_floor_back_by_at_most_an_hour() {
        let t = 1_700_000_000_000;
        // Stepped back 30 minutes: fresh results stamped t - 30 min are accepted.
        assert_eq!(backfill_floor(Some(t), Some(t - 30 * MIN)), Some(t - 40 * MIN));
        // A claim of a clock 20 days behind buys no more than an hour.
        assert_eq!(backfill_floor(Some(t), Some(t - 20 * 1440 * MIN)), Some(t - 70 * MIN));
        // Nothing stored yet: no floor.
        assert_eq!(backfill_floor(None, Some(t)), None);
    }

    fn config() -> CollectorConfig {
        let text = format!(
            "[agents.a]\ntoken_hash = \"sha256:{}\"\nlabels = {{ role = \"web\" }}\n\
             [agents.b]\ntoken_hash = \"sha256:{}\"\n\
             [checks.web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nselector = \"role=web\"\n\
             [checks.db]\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nagents = [\"b\"]\n",
            "a".repeat(64),
            "b".repeat(64)
        );
        CollectorConfig::parse(&text, std::path::Path::new("collector.toml")).unwrap()
    }

    fn specs(ids: &[&str]) -> Vec<Arc<CheckSpec>> {
        ids.iter().map(|id| Arc::new(CheckSpec::new(id, CheckKind::Tcp, "127.0.0.1:9", 1000))).collect()
    }

    #[test]
    fn an_agent_cannot_announce_another_agents_checks() {
        let cfg = config();
        let owners = HashMap::from([("disk".to_string(), "b".to_string())]);
        let a = announce(&cfg, "a", &specs(&["web", "db", "disk", "own", "own"]), &owners);
        assert_eq!(a.accepted.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["own"]);
        let refused: Vec<&str> = a.refused.iter().map(|r| r.check.as_str()).collect();
        assert_eq!(refused, vec!["db", "disk"], "web is assigned to a by its selector: no refusal");
    }

    #[test]
    fn local_checks_are_bounded_per_agent() {
        let cfg = CollectorConfig { max_local_checks: 2, ..config() };
        let a = announce(&cfg, "a", &specs(&["l1", "l2", "l3"]), &HashMap::new());
        assert_eq!(a.accepted.len(), 2);
        assert_eq!(a.refused.len(), 1);
        assert!(a.refused[0].reason.contains("at most 2"), "{:?}", a.refused);
    }
}
