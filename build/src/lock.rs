//! build/packages.lock: the Debian packages a build used, one `archive name version
//! sha256` line each (`trixie-security openssh-server 1:10.0p1-7+deb13u4 ...`), sorted.
//! Entries are keyed by suite and name, so one package taken at two versions (libc6 in
//! the trixie root and in the unstable engine image) is two entries. A build compares
//! what apt resolves with the lock and reports the drift; `corral-build lock` rewrites
//! it; `--locked` turns drift into an error.

use crate::apt::{Deb, Suite};
use std::collections::BTreeMap;

const HEADER: &str =
    "# Debian packages in Corral's root and images: archive name version sha256.\n\
# Written by `corral-build lock`; a build reports any drift from it.\n";

/// The key of a lock entry: the suite (`trixie` for `trixie-security`) and the name.
pub type Key = (String, String);

/// One locked package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub archive: String,
    pub version: String,
    pub sha256: String,
}

fn suite_of(archive: &str) -> String {
    Suite::of_archive(archive).map_or_else(|| archive.to_string(), |s| s.name().to_string())
}

fn key(d: &Deb) -> Key {
    (suite_of(&d.archive), d.name.clone())
}

/// The lock file's text for a set of packages.
pub fn render(debs: &[Deb]) -> String {
    let mut sorted: Vec<&Deb> = debs.iter().collect();
    sorted.sort_by_key(|d| key(d));
    sorted.dedup_by_key(|d| key(d));
    let mut text = HEADER.to_string();
    for d in sorted {
        text.push_str(&format!(
            "{} {} {} {}\n",
            d.archive, d.name, d.version, d.sha256
        ));
    }
    text
}

/// (suite, name) -> entry from a lock file's text. Lines of another shape (a lock from
/// before suites were recorded) are left out, so they show as drift.
pub fn parse(text: &str) -> BTreeMap<Key, Entry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [archive, name, version, sha256] = f[..] else {
                return None;
            };
            Some((
                (suite_of(archive), name.to_string()),
                Entry {
                    archive: archive.to_string(),
                    version: version.to_string(),
                    sha256: sha256.to_string(),
                },
            ))
        })
        .collect()
}

/// What the lock says of a package in a suite, for an error message.
pub fn describe(locked: &BTreeMap<Key, Entry>, suite: &str, name: &str) -> String {
    let suite = suite.split('+').next().unwrap_or(suite);
    match locked.get(&(suite.to_string(), name.to_string())) {
        Some(e) => format!(
            " (build/packages.lock has {} {} {})",
            e.archive, name, e.version
        ),
        None => " (build/packages.lock has no entry for it)".to_string(),
    }
}

/// Human-readable differences between the lock and what was resolved; empty when none.
pub fn drift(locked: &BTreeMap<Key, Entry>, resolved: &[Deb]) -> Vec<String> {
    let now: BTreeMap<Key, &Deb> = resolved.iter().map(|d| (key(d), d)).collect();
    let mut lines = Vec::new();
    for ((suite, name), e) in locked {
        match now.get(&(suite.clone(), name.clone())) {
            None => lines.push(format!("- {suite}/{name} {} (no longer needed)", e.version)),
            Some(d) if d.version != e.version => lines.push(format!(
                "~ {suite}/{name} {} -> {} ({})",
                e.version, d.version, d.archive
            )),
            Some(d) if d.sha256 != e.sha256 => lines.push(format!(
                "! {suite}/{name} {}: same version, different sha256",
                e.version
            )),
            Some(_) => {}
        }
    }
    for ((suite, name), d) in &now {
        if !locked.contains_key(&(suite.clone(), name.clone())) {
            lines.push(format!("+ {suite}/{name} {} ({})", d.version, d.archive));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(archive: &str, name: &str, version: &str, sha: &str) -> Deb {
        Deb {
            name: name.into(),
            version: version.into(),
            filename: format!("{name}_{version}_amd64.deb"),
            size: 1,
            sha256: sha.into(),
            archive: archive.into(),
        }
    }

    #[test]
    fn render_then_parse_round_trips() {
        let debs = [
            deb("trixie", "runc", "1.1", "aa"),
            deb("trixie-security", "busybox", "1:1.35", "bb"),
        ];
        let parsed = parse(&render(&debs));
        assert_eq!(parsed.len(), 2);
        let e = &parsed[&("trixie".to_string(), "busybox".to_string())];
        assert_eq!(
            (e.archive.as_str(), e.version.as_str()),
            ("trixie-security", "1:1.35")
        );
        assert!(drift(&parsed, &debs).is_empty());
    }

    #[test]
    fn one_package_at_two_versions_is_two_entries() {
        let debs = [
            deb("trixie", "libc6", "2.41", "aa"),
            deb("unstable", "libc6", "2.42", "bb"),
            deb("trixie", "libc6", "2.41", "aa"),
        ];
        let text = render(&debs);
        assert_eq!(
            text.lines().filter(|l| l.contains("libc6")).count(),
            2,
            "{text}"
        );
        let parsed = parse(&text);
        assert_eq!(parsed.len(), 2);
        assert!(drift(&parsed, &debs).is_empty());
    }

    #[test]
    fn drift_names_added_removed_changed_and_resigned_packages() {
        let locked = parse(&render(&[
            deb("trixie", "runc", "1.1", "aa"),
            deb("trixie", "tini", "0.19", "cc"),
            deb("unstable", "zlib", "1.2", "dd"),
        ]));
        let now = [
            deb("trixie-security", "runc", "1.2", "ab"),
            deb("unstable", "zlib", "1.2", "de"),
            deb("unstable", "new", "1", "ee"),
        ];
        let d = drift(&locked, &now);
        assert_eq!(
            d,
            [
                "~ trixie/runc 1.1 -> 1.2 (trixie-security)",
                "- trixie/tini 0.19 (no longer needed)",
                "! unstable/zlib 1.2: same version, different sha256",
                "+ unstable/new 1 (unstable)"
            ]
        );
    }

    #[test]
    fn a_lock_from_before_suites_is_all_drift_not_an_error() {
        let old = "# old\nrunc 1.1 aa\n";
        assert!(parse(old).is_empty());
        assert_eq!(
            drift(&parse(old), &[deb("trixie", "runc", "1.1", "aa")]),
            ["+ trixie/runc 1.1 (trixie)"]
        );
    }

    #[test]
    fn the_lock_entry_of_a_missing_package_is_described() {
        let locked = parse(&render(&[deb("unstable", "crun", "1.28", "aa")]));
        assert!(describe(&locked, "trixie+unstable", "crun").contains("no entry"));
        assert!(describe(&locked, "unstable", "crun").contains("unstable crun 1.28"));
    }
}
