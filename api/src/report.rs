//! The boot report: this boot's steps, each with when it began and ended (seconds since
//! the kernel started, CLOCK_BOOTTIME) and the step it waited for. The critical path is
//! the chain of waits that ends at the step that finished last: shortening any other
//! step does not make the boot shorter.

use serde::{Deserialize, Serialize};

/// One step of the boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    /// Seconds since the kernel started.
    pub start: f64,
    pub end: f64,
    /// The step this one could not begin before.
    pub after: Option<String>,
    /// On the critical path.
    pub critical: bool,
}

impl Step {
    pub fn new(name: &str, start: f64, end: f64, after: Option<&str>) -> Step {
        Step {
            name: name.to_string(),
            start,
            end: end.max(start),
            after: after.map(str::to_string),
            critical: false,
        }
    }

    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

/// `corral boot-report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootReport {
    /// In time order (by start, then end).
    pub steps: Vec<Step>,
}

impl BootReport {
    /// The report of `steps`: sorted, the critical path marked.
    pub fn new(mut steps: Vec<Step>) -> BootReport {
        steps.sort_by(|a, b| {
            a.start
                .total_cmp(&b.start)
                .then(a.end.total_cmp(&b.end))
                .then(a.name.cmp(&b.name))
        });
        for s in &mut steps {
            s.critical = false;
        }
        let last = steps
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| a.end.total_cmp(&b.end))
            .map(|(i, _)| i);
        let mut at = last;
        // A chain cannot be longer than the steps (a cycle in `after` stops here).
        for _ in 0..steps.len() {
            let Some(i) = at else { break };
            if steps[i].critical {
                break;
            }
            steps[i].critical = true;
            at = steps[i]
                .after
                .as_ref()
                .and_then(|a| steps.iter().position(|s| &s.name == a));
        }
        BootReport { steps }
    }

    /// The report as a table: step, start, end, duration, and `*` on the critical path.
    pub fn table(&self) -> String {
        let width = self
            .steps
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{:<width$}  {:>8}  {:>8}  {:>8}  CRITICAL\n",
            "STEP", "START", "END", "TOOK"
        );
        for s in &self.steps {
            out.push_str(&format!(
                "{:<width$}  {:>7.2}s  {:>7.2}s  {:>7.2}s  {}\n",
                s.name,
                s.start,
                s.end,
                s.duration(),
                if s.critical { "*" } else { "" }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_critical_path_runs_back_from_the_last_step() {
        let r = BootReport::new(vec![
            Step::new("service ntp", 12.0, 14.0, Some("configuration")),
            Step::new("kernel", 0.0, 1.2, None),
            Step::new("system engine", 2.0, 10.0, Some("kernel")),
            Step::new("configuration", 10.0, 11.0, Some("system engine")),
            Step::new("service console", 11.0, 13.0, Some("configuration")),
            Step::new("user engine", 13.0, 20.0, Some("service console")),
        ]);
        let names: Vec<&str> = r.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kernel",
                "system engine",
                "configuration",
                "service console",
                "service ntp",
                "user engine"
            ]
        );
        let critical: Vec<&str> = r
            .steps
            .iter()
            .filter(|s| s.critical)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            critical,
            [
                "kernel",
                "system engine",
                "configuration",
                "service console",
                "user engine"
            ]
        );
        let table = r.table();
        assert!(table.starts_with("STEP"), "{table}");
        assert!(
            table.contains("user engine        13.00s    20.00s     7.00s  *"),
            "{table}"
        );
        assert!(table.contains("service ntp        12.00s    14.00s     2.00s  \n"));
    }

    #[test]
    fn a_cycle_or_a_missing_step_ends_the_path() {
        let r = BootReport::new(vec![
            Step::new("a", 0.0, 1.0, Some("b")),
            Step::new("b", 1.0, 2.0, Some("a")),
            Step::new("c", 0.0, 0.5, Some("gone")),
        ]);
        assert!(r.steps.iter().find(|s| s.name == "a").unwrap().critical);
        assert!(r.steps.iter().find(|s| s.name == "b").unwrap().critical);
        assert!(!r.steps.iter().find(|s| s.name == "c").unwrap().critical);
        assert_eq!(BootReport::new(vec![]).steps.len(), 0);
        // An end before the start is clamped: no negative durations.
        assert_eq!(Step::new("x", 2.0, 1.0, None).duration(), 0.0);
    }
}
