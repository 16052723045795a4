//! Property tests of the pure core: the check state machine and the SLO arithmetic hold their
//! rules for any input proptest can find, not only the cases written down by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use vakt_collector::core::slo::{Counts, Method, Series, Slo, Unknown, Window, MINUTE_MS};
use vakt_collector::core::state::{CheckState, Policy, Status, Transition};

fn results() -> impl Strategy<Value = Vec<(bool, i64)>> {
    // (success, milliseconds since the previous result; sometimes negative: out of order)
    prop::collection::vec((any::<bool>(), -500i64..5_000), 0..200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Down only after `fail_after` failures in a row, up again only after `recover_after`
    /// successes in a row; transitions alternate (one incident per outage); a result older than
    /// the last one changes nothing; "down since" is the run's first failure.
    #[test]
    fn the_check_state_machine_keeps_its_rules(
        steps in results(),
        fail_after in 1u32..6,
        recover_after in 1u32..6,
    ) {
        let policy = Policy { fail_after, recover_after };
        let mut state = CheckState::default();
        let mut t = 1_000_000i64;
        let mut applied: Vec<(bool, i64)> = Vec::new();
        let mut last_transition: Option<Status> = None;
        for (success, dt) in steps {
            t += dt;
            let before = state.clone();
            let out_of_order = before.last_sample_ms.is_some_and(|last| t < last);
            let transition = state.observe(success, t, (!success).then_some("boom"), policy);
            if out_of_order {
                prop_assert_eq!(&state, &before, "an older result changed the state");
                prop_assert!(transition.is_none());
                continue;
            }
            applied.push((success, t));
            match transition {
                Some(Transition::Down { since_ms, .. }) => {
                    prop_assert_ne!(last_transition, Some(Status::Down), "down twice without recovering");
                    let tail = &applied[applied.len().saturating_sub(fail_after as usize)..];
                    prop_assert!(tail.len() == fail_after as usize && tail.iter().all(|(s, _)| !s));
                    // The run of failures began at `since_ms`.
                    let run_start = applied.iter().rposition(|(s, _)| *s).map_or(0, |i| i + 1);
                    prop_assert_eq!(since_ms, applied[run_start].1);
                    last_transition = Some(Status::Down);
                }
                Some(Transition::Up { was, .. }) => {
                    prop_assert_ne!(last_transition, Some(Status::Up), "up twice without going down");
                    if was == Status::Down {
                        let tail = &applied[applied.len().saturating_sub(recover_after as usize)..];
                        prop_assert!(tail.len() == recover_after as usize && tail.iter().all(|(s, _)| *s));
                    }
                    last_transition = Some(Status::Up);
                }
                None => {}
            }
            if applied.iter().any(|(s, _)| *s) {
                prop_assert_ne!(state.status, Status::Unknown, "a success makes the state known");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// One agent's results always count, whatever its clock does: with steps back they move the
    /// state exactly as the same results would on a clock that never goes back (each at the
    /// latest time seen so far), so a stepped-back clock never leaves a check blind.
    #[test]
    fn one_agents_results_count_through_clock_steps(
        steps in results(),
        fail_after in 1u32..6,
        recover_after in 1u32..6,
    ) {
        let policy = Policy { fail_after, recover_after };
        let (mut stepped, mut steady) = (CheckState::default(), CheckState::default());
        let (mut t, mut latest) = (1_000_000i64, i64::MIN);
        for (success, dt) in steps {
            t += dt;
            latest = latest.max(t);
            let error = (!success).then_some("boom");
            let a = stepped.observe_from("edge", success, false, t, error, policy);
            let b = steady.observe(success, latest, error, policy);
            prop_assert_eq!(a, b);
            prop_assert_eq!(stepped.last_agent.as_deref(), Some("edge"));
            stepped.last_agent = None;
            prop_assert_eq!(&stepped, &steady);
            stepped.last_agent = Some("edge".into());
        }
    }
}

fn minutes() -> impl Strategy<Value = Vec<Counts>> {
    prop::collection::vec(
        (0u64..20, 0u64..20, 0u64..=60_000, 0u64..=60_000).prop_map(|(events, bad, down, unknown)| {
            let down = down.min(60_000);
            let unknown = unknown.min(60_000 - down);
            Counts { events, bad_events: bad.min(events), down_ms: down, unknown_ms: unknown, excluded_ms: 0 }
        }),
        1..300,
    )
}

fn slo(objective: f64, method: Method, unknown: Unknown) -> Slo {
    Slo {
        name: "p".into(),
        method,
        objective,
        window: Window::Rolling { ms: 30 * 86_400_000 },
        unknown,
        rules: Vec::new(),
        hours: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Prefix sums add up: any split of a range sums to the whole, and the whole series is the
    /// sum of its minutes.
    #[test]
    fn series_ranges_add_up(mins in minutes(), a in 0usize..300, b in 0usize..300, c in 0usize..300) {
        let start = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE_MS;
        let series = Series::new(start, &mins);
        let n = mins.len();
        let mut cut = [a % (n + 1), b % (n + 1), c % (n + 1)];
        cut.sort_unstable();
        let at = |i: usize| start + i as i64 * MINUTE_MS;
        let (x, y) = (series.range(at(cut[0]), at(cut[1])), series.range(at(cut[1]), at(cut[2])));
        let whole = series.range(at(cut[0]), at(cut[2]));
        prop_assert_eq!(x.events + y.events, whole.events);
        prop_assert_eq!(x.bad_events + y.bad_events, whole.bad_events);
        prop_assert_eq!(x.down_ms + y.down_ms, whole.down_ms);
        // Time adds up at any millisecond, not only on minutes.
        let ms = |i: usize, off: i64| (start + i as i64 * MINUTE_MS + off).min(at(n));
        let mut t = [ms(cut[0], a as i64 * 197), ms(cut[1], b as i64 * 199), ms(cut[2], c as i64 * 193)];
        t.sort_unstable();
        let [p, q, r] = t;
        let (x, y, whole) = (series.range(p, q), series.range(q, r), series.range(p, r));
        prop_assert_eq!(x.down_ms + y.down_ms, whole.down_ms);
        prop_assert_eq!(x.unknown_ms + y.unknown_ms, whole.unknown_ms);
        prop_assert_eq!(x.excluded_ms + y.excluded_ms, whole.excluded_ms);
        prop_assert!(whole.down_ms + whole.unknown_ms + whole.excluded_ms <= (r - p) as u64);
        let all = series.range(at(0), at(n));
        prop_assert_eq!(all.events, mins.iter().map(|m| m.events).sum::<u64>());
        prop_assert_eq!(all.down_ms, mins.iter().map(|m| m.down_ms).sum::<u64>());
    }

    /// The assessment is consistent with itself: achieved in [0, 1]; met exactly when the
    /// spent budget is within the allowed; remaining = 1 - spent/allowed; a burn rate of 1 or
    /// less over the whole span means the objective is met.
    #[test]
    fn slo_arithmetic_is_consistent(
        mins in minutes(),
        objective in prop::sample::select(vec![0.9, 0.99, 0.995, 0.999, 0.9999]),
        events in any::<bool>(),
        unknown in prop::sample::select(vec![Unknown::Exclude, Unknown::Good, Unknown::Bad]),
    ) {
        let start = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE_MS;
        let series = Series::new(start, &mins);
        let end = start + mins.len() as i64 * MINUTE_MS;
        let s = slo(objective, if events { Method::Events } else { Method::Time }, unknown);
        let a = s.assess(&series, start, end);
        if let Some(x) = a.achieved {
            prop_assert!((0.0..=1.0).contains(&x), "achieved {x}");
            if x > objective + 1e-9 {
                prop_assert!(a.met, "achieved {x} above {objective} but not met");
            }
            if x < objective - 1e-9 {
                prop_assert!(!a.met, "achieved {x} below {objective} but met");
            }
        } else {
            prop_assert!(a.sli.valid <= 0.0);
        }
        prop_assert!(a.budget_spent >= 0.0 && a.budget_allowed >= 0.0);
        if a.budget_allowed > 0.0 {
            let expected = 1.0 - a.budget_spent / a.budget_allowed;
            prop_assert!((a.budget_remaining_ratio - expected).abs() < 1e-9);
        }
        let burn = s.burn_rate(&series, start, end);
        prop_assert!(burn >= 0.0);
        if a.sli.valid > 0.0 {
            prop_assert!((burn * (1.0 - objective) - a.sli.bad_ratio()).abs() < 1e-9);
            // Spending the budget exactly in the span is a burn rate of 1: below it the
            // objective is met, above it missed.
            if burn < 1.0 - 1e-9 {
                prop_assert!(a.met, "burn {burn} < 1 but not met");
            }
            if burn > 1.0 + 1e-9 {
                prop_assert!(!a.met, "burn {burn} > 1 but met");
            }
        }
    }
}
