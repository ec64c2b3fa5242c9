//! build/packages.lock: the Debian packages a build used, one `name version sha256` line
//! each, sorted. A build compares what apt resolves with the lock and reports the drift;
//! `corral-build lock` rewrites it; `--locked` turns drift into an error.

use crate::apt::Deb;
use std::collections::BTreeMap;

const HEADER: &str = "# Debian 12 packages in Corral's images: name version sha256.\n\
# Written by `corral-build lock`; a build reports any drift from it.\n";

/// The lock file's text for a set of packages.
pub fn render(debs: &[Deb]) -> String {
    let mut sorted: Vec<&Deb> = debs.iter().collect();
    sorted.sort();
    sorted.dedup_by(|a, b| a.name == b.name);
    let mut text = HEADER.to_string();
    for d in sorted {
        text.push_str(&format!("{} {} {}\n", d.name, d.version, d.sha256));
    }
    text
}

/// name -> (version, sha256) from a lock file's text.
pub fn parse(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((
                f.next()?.to_string(),
                (f.next()?.to_string(), f.next()?.to_string()),
            ))
        })
        .collect()
}

/// Human-readable differences between the lock and what was resolved; empty when none.
pub fn drift(locked: &BTreeMap<String, (String, String)>, resolved: &[Deb]) -> Vec<String> {
    let now: BTreeMap<&str, &Deb> = resolved.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut lines = Vec::new();
    for (name, (version, sha)) in locked {
        match now.get(name.as_str()) {
            None => lines.push(format!("- {name} {version} (no longer needed)")),
            Some(d) if d.version != *version => {
                lines.push(format!("~ {name} {version} -> {}", d.version))
            }
            Some(d) if d.sha256 != *sha => lines.push(format!(
                "! {name} {version}: same version, different sha256"
            )),
            Some(_) => {}
        }
    }
    for (name, d) in &now {
        if !locked.contains_key(*name) {
            lines.push(format!("+ {name} {}", d.version));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, version: &str, sha: &str) -> Deb {
        Deb {
            name: name.into(),
            version: version.into(),
            filename: format!("{name}_{version}_amd64.deb"),
            size: 1,
            sha256: sha.into(),
        }
    }

    #[test]
    fn render_then_parse_round_trips() {
        let debs = [deb("runc", "1.1", "aa"), deb("busybox", "1:1.35", "bb")];
        let parsed = parse(&render(&debs));
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed["busybox"], ("1:1.35".to_string(), "bb".to_string()));
        assert!(drift(&parsed, &debs).is_empty());
    }

    #[test]
    fn drift_names_added_removed_changed_and_resigned_packages() {
        let locked = parse(&render(&[
            deb("runc", "1.1", "aa"),
            deb("tini", "0.19", "cc"),
            deb("zlib", "1.2", "dd"),
        ]));
        let now = [
            deb("runc", "1.2", "ab"),
            deb("zlib", "1.2", "de"),
            deb("new", "1", "ee"),
        ];
        let d = drift(&locked, &now);
        assert_eq!(
            d,
            [
                "~ runc 1.1 -> 1.2",
                "- tini 0.19 (no longer needed)",
                "! zlib 1.2: same version, different sha256",
                "+ new 1"
            ]
        );
    }
}
