//! Restart policies, decided by the manager rather than by dockerd, so that every restart
//! is logged with its reason and backs off the same way PID 1 does (0.5 s doubling to
//! 30 s; a run of a minute resets it). Pure logic: the event loop in `watch` feeds it.

use corral_host::respawn::backoff;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A run this long counts as healthy and resets the backoff.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// compose's `restart:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    No,
    Always,
    UnlessStopped,
    /// Restart after a non-zero exit, at most this many times in a row when given.
    OnFailure(Option<u32>),
}

impl Policy {
    /// Parses `no`, `always`, `unless-stopped`, `on-failure[:N]` (absent: `no`).
    pub fn parse(restart: Option<&str>) -> Result<Policy, String> {
        let Some(r) = restart else {
            return Ok(Policy::No);
        };
        match r.split_once(':') {
            Some(("on-failure", n)) => n
                .parse()
                .map(|n| Policy::OnFailure(Some(n)))
                .map_err(|_| format!("restart: {r:?} has a bad retry count")),
            _ => match r {
                "no" | "" => Ok(Policy::No),
                "always" => Ok(Policy::Always),
                "unless-stopped" => Ok(Policy::UnlessStopped),
                "on-failure" => Ok(Policy::OnFailure(None)),
                other => Err(format!(
                    "restart: {other:?} is not no, always, unless-stopped or on-failure[:N]"
                )),
            },
        }
    }
}

/// What to do about a service's exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after this delay.
    Restart(Duration),
    /// Leave it stopped, for this reason.
    Leave(String),
}

#[derive(Debug, Clone)]
struct State {
    failures: u32,
    started: Option<Instant>,
    /// `docker stop` (or the manager at shutdown) stopped it: not a crash.
    stopped: bool,
}

/// Per-service restart bookkeeping.
#[derive(Debug, Default)]
pub struct Tracker {
    policies: HashMap<String, Policy>,
    state: HashMap<String, State>,
}

impl Tracker {
    pub fn new(policies: HashMap<String, Policy>) -> Tracker {
        Tracker {
            policies,
            state: HashMap::new(),
        }
    }

    /// What a service's container says its policy is (its restart label): a service
    /// brought up at boot or later (`corral service up`), or one recreated with a changed
    /// policy, is restarted by what it now says.
    pub fn set_policy(&mut self, name: &str, policy: Policy) {
        self.policies.insert(name.to_string(), policy);
    }

    fn state(&mut self, name: &str) -> &mut State {
        self.state.entry(name.to_string()).or_insert(State {
            failures: 0,
            started: None,
            stopped: false,
        })
    }

    /// The container started.
    pub fn started(&mut self, name: &str, now: Instant) {
        let s = self.state(name);
        s.started = Some(now);
        s.stopped = false;
    }

    /// The container was stopped on purpose (`stop` event): a pending restart is off.
    pub fn stopped(&mut self, name: &str) {
        self.state(name).stopped = true;
    }

    /// Whether a restart decided earlier still stands (no stop came in between).
    pub fn still_wanted(&self, name: &str) -> bool {
        self.state.get(name).is_some_and(|s| !s.stopped)
    }

    /// The container exited with `code`.
    pub fn exited(&mut self, name: &str, code: i64, now: Instant) -> Decision {
        let Some(policy) = self.policies.get(name).copied() else {
            return Decision::Leave("its container names no restart policy".into());
        };
        let s = self.state(name);
        if s.stopped {
            return Decision::Leave("stopped on purpose".into());
        }
        if s.started
            .is_some_and(|t| now.saturating_duration_since(t) >= HEALTHY_RUN)
        {
            s.failures = 0;
        }
        match policy {
            Policy::No => return Decision::Leave("restart: no".into()),
            Policy::Always | Policy::UnlessStopped => {}
            Policy::OnFailure(_) if code == 0 => {
                return Decision::Leave("exited 0 and restart is on-failure".into())
            }
            Policy::OnFailure(Some(max)) if s.failures >= max => {
                return Decision::Leave(format!("gave up after {max} restarts"))
            }
            Policy::OnFailure(_) => {}
        }
        let delay = backoff(s.failures);
        s.failures = s.failures.saturating_add(1);
        Decision::Restart(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(policy: Policy) -> Tracker {
        Tracker::new(HashMap::from([("svc".to_string(), policy)]))
    }

    #[test]
    fn policies_parse_and_bad_ones_are_named() {
        assert_eq!(Policy::parse(None), Ok(Policy::No));
        assert_eq!(Policy::parse(Some("always")), Ok(Policy::Always));
        assert_eq!(
            Policy::parse(Some("unless-stopped")),
            Ok(Policy::UnlessStopped)
        );
        assert_eq!(
            Policy::parse(Some("on-failure")),
            Ok(Policy::OnFailure(None))
        );
        assert_eq!(
            Policy::parse(Some("on-failure:3")),
            Ok(Policy::OnFailure(Some(3)))
        );
        let err = Policy::parse(Some("on-failure:x")).expect_err("bad count");
        assert!(err.contains("bad retry count"), "{err}");
        let err = Policy::parse(Some("sometimes")).expect_err("bad name");
        assert!(err.contains("\"sometimes\" is not no, always"), "{err}");
    }

    #[test]
    fn a_policy_learned_later_applies_to_the_next_exit() {
        let mut t = Tracker::default();
        let now = Instant::now();
        t.started("late", now);
        assert!(
            matches!(t.exited("late", 1, now), Decision::Leave(_)),
            "unknown: left"
        );
        t.set_policy("late", Policy::OnFailure(None));
        t.started("late", now);
        assert!(matches!(t.exited("late", 1, now), Decision::Restart(_)));
        t.set_policy("late", Policy::No);
        assert!(matches!(t.exited("late", 1, now), Decision::Leave(_)));
    }

    #[test]
    fn crash_loops_back_off_and_a_healthy_run_resets_it() {
        let mut t = tracker(Policy::Always);
        let t0 = Instant::now();
        let mut delays = Vec::new();
        for i in 0..8u64 {
            let at = t0 + Duration::from_secs(i);
            t.started("svc", at);
            match t.exited("svc", 1, at + Duration::from_millis(100)) {
                Decision::Restart(d) => delays.push(d.as_millis()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        let later = t0 + Duration::from_secs(100);
        t.started("svc", later);
        assert_eq!(
            t.exited("svc", 0, later + HEALTHY_RUN),
            Decision::Restart(Duration::from_millis(500)),
            "a minute of running resets the backoff; always restarts even on exit 0"
        );
    }

    #[test]
    fn on_failure_counts_and_ignores_clean_exits() {
        let mut t = tracker(Policy::OnFailure(Some(2)));
        let now = Instant::now();
        t.started("svc", now);
        assert!(matches!(t.exited("svc", 0, now), Decision::Leave(_)));
        assert!(matches!(t.exited("svc", 3, now), Decision::Restart(_)));
        assert!(matches!(t.exited("svc", 3, now), Decision::Restart(_)));
        assert_eq!(
            t.exited("svc", 3, now),
            Decision::Leave("gave up after 2 restarts".into())
        );
    }

    #[test]
    fn a_stop_on_purpose_is_not_restarted_until_the_next_start() {
        let mut t = tracker(Policy::Always);
        let now = Instant::now();
        t.started("svc", now);
        assert!(matches!(t.exited("svc", 137, now), Decision::Restart(_)));
        assert!(t.still_wanted("svc"));
        // `docker stop` sends the stop event right after the die event.
        t.stopped("svc");
        assert!(!t.still_wanted("svc"), "the pending restart is off");
        assert!(matches!(t.exited("svc", 0, now), Decision::Leave(_)));
        t.started("svc", now);
        assert!(t.still_wanted("svc"));
        assert!(matches!(
            tracker(Policy::No).exited("svc", 1, now),
            Decision::Leave(_)
        ));
        assert!(matches!(
            tracker(Policy::No).exited("other", 1, now),
            Decision::Leave(_)
        ));
    }
}
