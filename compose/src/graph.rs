//! The order services start in: `io.rancher.os.after` and `before` labels and
//! `volumes_from` make edges. A cycle is an error that names it; the services in it, and
//! those waiting on them, do not start, and every other service does. A dependency on a
//! service that is not defined is a warning and is ignored, as RancherOS did.

use crate::file::Service;
use std::collections::{BTreeMap, BTreeSet};

/// service -> the services it waits for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Graph {
    pub deps: BTreeMap<String, BTreeSet<String>>,
    pub warnings: Vec<String>,
}

impl Graph {
    pub fn new(services: &BTreeMap<String, Service>) -> Graph {
        let mut g = Graph::default();
        for name in services.keys() {
            g.deps.entry(name.clone()).or_default();
        }
        let edge = |g: &mut Graph, waiter: &str, first: &str, why: &str| {
            if !services.contains_key(first) {
                g.warnings.push(format!(
                    "service {waiter}: {why} {first:?}, which is not defined; ignored"
                ));
            } else if let Some(set) = g.deps.get_mut(waiter) {
                set.insert(first.to_string());
            }
        };
        for (name, s) in services {
            for a in s.after() {
                edge(&mut g, name, &a, "starts after");
            }
            for b in s.before() {
                if services.contains_key(&b) {
                    edge(&mut g, &b, name, "starts after");
                } else {
                    g.warnings.push(format!(
                        "service {name}: starts before {b:?}, which is not defined; ignored"
                    ));
                }
            }
            for v in &s.volumes_from {
                edge(&mut g, name, v, "takes volumes from");
            }
        }
        g
    }

    /// Every cycle, each as the path that closes it (`a -> b -> a`), sorted.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        // Tarjan's strongly connected components; a component of two or more services,
        // or one that waits for itself, is a cycle.
        struct State<'a> {
            g: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on_stack: BTreeSet<&'a str>,
            next: usize,
            out: Vec<Vec<String>>,
        }
        fn visit<'a>(st: &mut State<'a>, v: &'a str) {
            st.index.insert(v, st.next);
            st.low.insert(v, st.next);
            st.next += 1;
            st.stack.push(v);
            st.on_stack.insert(v);
            for w in st.g.deps.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !st.index.contains_key(w) {
                    visit(st, w);
                    let lw = st.low[w];
                    let lv = st.low[v];
                    st.low.insert(v, lv.min(lw));
                } else if st.on_stack.contains(w) {
                    let iw = st.index[w];
                    let lv = st.low[v];
                    st.low.insert(v, lv.min(iw));
                }
            }
            if st.low[v] == st.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = st.stack.pop() {
                    st.on_stack.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                let self_loop = st.g.deps.get(v).is_some_and(|d| d.contains(v));
                if comp.len() > 1 || self_loop {
                    comp.sort();
                    st.out.push(comp);
                }
            }
        }
        let mut st = State {
            g: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            next: 0,
            out: Vec::new(),
        };
        for v in self.deps.keys() {
            if !st.index.contains_key(v.as_str()) {
                visit(&mut st, v);
            }
        }
        let mut cycles: Vec<Vec<String>> =
            st.out.into_iter().map(|c| self.path_through(&c)).collect();
        cycles.sort();
        cycles
    }

    /// A readable loop through a component: from its first member along edges inside it
    /// back to the start.
    fn path_through(&self, comp: &[String]) -> Vec<String> {
        let members: BTreeSet<&String> = comp.iter().collect();
        let start = &comp[0];
        let mut path = vec![start.clone()];
        let mut seen = BTreeSet::from([start.clone()]);
        let mut cur = start.clone();
        loop {
            let deps = self.deps.get(&cur).cloned().unwrap_or_default();
            if deps.contains(start) && (path.len() > 1 || deps.contains(&cur)) {
                path.push(start.clone());
                return path;
            }
            match deps
                .iter()
                .find(|d| members.contains(d) && !seen.contains(*d))
            {
                Some(next) => {
                    seen.insert(next.clone());
                    path.push(next.clone());
                    cur = next.clone();
                }
                None => {
                    path.push(start.clone());
                    return path;
                }
            }
        }
    }

    /// Services that cannot start: in a cycle, or waiting (directly or not) on one.
    pub fn blocked(&self) -> BTreeSet<String> {
        let mut blocked: BTreeSet<String> = self.cycles().into_iter().flatten().collect();
        loop {
            let more: Vec<String> = self
                .deps
                .iter()
                .filter(|(n, d)| !blocked.contains(*n) && d.iter().any(|x| blocked.contains(x)))
                .map(|(n, _)| n.clone())
                .collect();
            if more.is_empty() {
                return blocked;
            }
            blocked.extend(more);
        }
    }

    /// The startable services in waves: each wave waits only for earlier waves, and the
    /// services of one wave start in parallel.
    pub fn waves(&self) -> Vec<Vec<String>> {
        let blocked = self.blocked();
        let mut done: BTreeSet<String> = BTreeSet::new();
        let mut waves = Vec::new();
        loop {
            let wave: Vec<String> = self
                .deps
                .iter()
                .filter(|(n, d)| {
                    !blocked.contains(*n)
                        && !done.contains(*n)
                        && d.iter().all(|x| done.contains(x))
                })
                .map(|(n, _)| n.clone())
                .collect();
            if wave.is_empty() {
                return waves;
            }
            done.extend(wave.iter().cloned());
            waves.push(wave);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::parse;

    fn graph(yaml: &str) -> Graph {
        Graph::new(&parse("s.yml", yaml).expect("parses").services)
    }

    fn svc(name: &str, labels: &str) -> String {
        format!("  {name}:\n    image: x\n    labels: {{{labels}}}\n")
    }

    #[test]
    fn after_before_and_volumes_from_order_the_waves() {
        let yaml = format!(
            "services:\n{}{}{}{}  console:\n    image: x\n    labels: {{io.rancher.os.after: network}}\n    volumes_from: [all-volumes]\n  all-volumes:\n    image: x\n",
            svc("network", ""),
            svc("ntp", "io.rancher.os.after: network"),
            svc("syslog", "io.rancher.os.before: network"),
            svc("acpid", ""),
        );
        let g = graph(&yaml);
        assert_eq!(
            g.waves(),
            [
                vec!["acpid", "all-volumes", "syslog"],
                vec!["network"],
                vec!["console", "ntp"]
            ]
        );
        assert!(g.cycles().is_empty());
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    }

    #[test]
    fn a_cycle_is_named_and_only_it_and_its_dependents_are_blocked() {
        let yaml = format!(
            "services:\n{}{}{}{}{}",
            svc("a", "io.rancher.os.after: c"),
            svc("b", "io.rancher.os.after: a"),
            svc("c", "io.rancher.os.after: b"),
            svc("d", "io.rancher.os.after: c"),
            svc("e", ""),
        );
        let g = graph(&yaml);
        assert_eq!(g.cycles(), [vec!["a", "c", "b", "a"]]);
        assert_eq!(
            g.blocked(),
            BTreeSet::from(["a", "b", "c", "d"].map(String::from))
        );
        assert_eq!(g.waves(), [vec!["e"]]);
    }

    #[test]
    fn a_service_after_itself_is_a_cycle() {
        let g = graph(&format!(
            "services:\n{}",
            svc("a", "io.rancher.os.after: a")
        ));
        assert_eq!(g.cycles(), [vec!["a", "a"]]);
    }

    #[test]
    fn undefined_dependencies_are_warnings() {
        let g = graph(&format!(
            "services:\n{}",
            svc("network", "io.rancher.os.after: udev")
        ));
        assert_eq!(g.waves(), [vec!["network"]]);
        assert_eq!(g.warnings.len(), 1);
        assert!(g.warnings[0].contains("\"udev\", which is not defined"));
    }
}
