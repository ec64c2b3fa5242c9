//! What a release is in a repository: the files a boot slot holds ([`PARTS`]), each a TUF
//! target named `corral-<version>-<arch>-<part>`, with the release's version, build id,
//! architecture and part in the target's `custom` field. A repository can offer many
//! releases; [`releases`] groups its targets back into them.

use crate::error::UpdateError;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// The files a slot holds, by their names in the slot: the kernel, the initrd, the root
/// image (with the system images; PID 1 reads it from the slot), and the slot's own boot
/// settings.
pub const PARTS: [&str; 4] = [
    "vmlinuz",
    "initrd",
    "root.squashfs",
    corral_disk::grub::SLOT_ENV,
];

/// The architecture this build runs on.
pub const ARCH: &str = "x86_64";

/// The key of a target's `custom` field that Corral reads.
pub const CUSTOM_KEY: &str = "corral";

/// A release's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseId {
    pub version: String,
    pub build_id: String,
    pub arch: String,
}

/// What a target's `custom.corral` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    #[serde(flatten)]
    pub release: ReleaseId,
    /// One of [`PARTS`].
    pub part: String,
}

/// One file of a release, as the signed metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// One of [`PARTS`].
    pub name: String,
    /// The TUF target's name.
    pub target: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// A release a repository offers, whole: every part of [`PARTS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub id: ReleaseId,
    pub parts: Vec<Part>,
}

impl Release {
    pub fn size(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }
}

/// `VERSION_ID` and `BUILD_ID` from an os-release file's text (empty values are none).
pub fn os_release(text: &str) -> (Option<String>, Option<String>) {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    };
    (field("VERSION_ID"), field("BUILD_ID"))
}

impl ReleaseId {
    /// The release an os-release file describes, on this architecture.
    pub fn from_os_release(text: &str) -> ReleaseId {
        let (version, build_id) = os_release(text);
        ReleaseId {
            version: version.unwrap_or_default(),
            build_id: build_id.unwrap_or_default(),
            arch: ARCH.into(),
        }
    }
}

/// Where a repository keeps a target: `<sha256>.<name>` (TUF's consistent snapshots).
pub fn stored_name(sha256: &[u8], target: &str) -> String {
    format!("{}.{target}", hex::encode(sha256))
}

/// The target's name for a part of a release.
pub fn target_name(id: &ReleaseId, part: &str) -> String {
    format!("corral-{}-{}-{part}", id.version, id.arch)
}

/// A version: dot-separated numbers (`1.4.0`), compared number by number; anything
/// else in a part compares as text after the numbers.
#[derive(Debug, Clone)]
pub struct Version(Vec<(u64, String)>);

impl Version {
    pub fn parse(text: &str) -> Version {
        Version(
            text.split(['.', '-', '+'])
                .map(|part| {
                    let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                    let rest = part[digits.len()..].to_string();
                    (digits.parse().unwrap_or(0), rest)
                })
                .collect(),
        )
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        let len = self.0.len().max(other.0.len());
        let zero = (0, String::new());
        for i in 0..len {
            let a = self.0.get(i).unwrap_or(&zero);
            let b = other.0.get(i).unwrap_or(&zero);
            // A part with a suffix (1.0.0-rc1) comes before the bare one.
            let order =
                a.0.cmp(&b.0)
                    .then_with(|| match (a.1.is_empty(), b.1.is_empty()) {
                        (true, false) => Ordering::Greater,
                        (false, true) => Ordering::Less,
                        _ => a.1.cmp(&b.1),
                    });
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, build {})",
            self.version, self.arch, self.build_id
        )
    }
}

/// The whole releases among `targets` (name, custom field, size, sha256), newest
/// first. A target without Corral's custom field is not Corral's and is skipped; a
/// release missing a part is skipped with a warning, since it cannot fill a slot.
pub fn releases<'a>(
    targets: impl Iterator<Item = (&'a str, Option<&'a serde_json::Value>, u64, &'a [u8])>,
) -> Vec<Release> {
    let mut by_version: BTreeMap<String, (ReleaseId, Vec<Part>)> = BTreeMap::new();
    for (name, custom, size, sha) in targets {
        let Some(info) = custom.and_then(|c| PartInfo::deserialize(c).ok()) else {
            continue;
        };
        let Ok(sha256) = <[u8; 32]>::try_from(sha) else {
            continue;
        };
        if !PARTS.contains(&info.part.as_str()) || name != target_name(&info.release, &info.part) {
            log::warn!("update target '{name}' does not name its part as Corral does; skipped");
            continue;
        }
        let key = format!("{}\0{}", info.release.version, info.release.arch);
        let entry = by_version
            .entry(key)
            .or_insert_with(|| (info.release.clone(), Vec::new()));
        if entry.0 != info.release {
            log::warn!("update target '{name}' disagrees with its release's build id; skipped");
            continue;
        }
        entry.1.push(Part {
            name: info.part,
            target: name.to_string(),
            size,
            sha256,
        });
    }
    let mut out: Vec<Release> = by_version
        .into_values()
        .filter_map(|(id, mut parts)| {
            let whole = PARTS.iter().all(|p| parts.iter().any(|x| x.name == *p));
            if !whole {
                log::warn!("release {id} lacks a part of {PARTS:?}; skipped");
                return None;
            }
            parts.sort_by_key(|p| PARTS.iter().position(|n| *n == p.name));
            Some(Release { id, parts })
        })
        .collect();
    out.sort_by(|a, b| Version::parse(&b.id.version).cmp(&Version::parse(&a.id.version)));
    out
}

/// The release to install: `wanted` if given, else the newest for this architecture.
/// Refused when it is not newer than `running` unless `force`.
pub fn choose<'r>(
    offered: &'r [Release],
    wanted: Option<&str>,
    running: &ReleaseId,
    force: bool,
) -> Result<&'r Release, UpdateError> {
    let ours = offered.iter().filter(|r| r.id.arch == running.arch);
    let release = match wanted {
        Some(v) => offered.iter().find(|r| r.id.version == v).ok_or_else(|| {
            UpdateError::NoSuchVersion {
                version: v.to_string(),
                offered: offered.iter().map(|r| r.id.version.clone()).collect(),
            }
        })?,
        None => ours
            .clone()
            .next()
            .ok_or_else(|| UpdateError::NoSuchVersion {
                version: format!("any for {}", running.arch),
                offered: offered.iter().map(|r| r.id.version.clone()).collect(),
            })?,
    };
    if release.id.arch != running.arch {
        return Err(UpdateError::Refused(format!(
            "release {} is for {}, this machine is {}",
            release.id.version, release.id.arch, running.arch
        )));
    }
    let (new, old) = (
        Version::parse(&release.id.version),
        Version::parse(&running.version),
    );
    if !force {
        if new < old {
            return Err(UpdateError::Refused(format!(
                "release {} is older than the running {}; add --force to go back to it",
                release.id.version, running.version
            )));
        }
        if new == old && release.id.build_id == running.build_id {
            return Err(UpdateError::Refused(format!(
                "release {} (build {}) is what runs; add --force to write it again",
                release.id.version, release.id.build_id
            )));
        }
    }
    Ok(release)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(version: &str, arch: &str) -> ReleaseId {
        ReleaseId {
            version: version.into(),
            build_id: format!("b{version}"),
            arch: arch.into(),
        }
    }

    fn targets(ids: &[ReleaseId]) -> Vec<(String, serde_json::Value)> {
        let mut out = Vec::new();
        for id in ids {
            for part in PARTS {
                let info = PartInfo {
                    release: id.clone(),
                    part: part.into(),
                };
                out.push((target_name(id, part), json!(info)));
            }
        }
        out
    }

    fn group(list: &[(String, serde_json::Value)]) -> Vec<Release> {
        let sha = [7u8; 32];
        releases(
            list.iter()
                .map(|(n, c)| (n.as_str(), Some(c), 10, &sha[..])),
        )
    }

    #[test]
    fn os_release_gives_the_running_release() {
        let r =
            ReleaseId::from_os_release("NAME=\"Corral\"\nVERSION_ID=\"0.2.0\"\nBUILD_ID=abc123\n");
        assert_eq!(
            (r.version.as_str(), r.build_id.as_str(), r.arch.as_str()),
            ("0.2.0", "abc123", ARCH)
        );
        assert_eq!(os_release("NAME=x\nVERSION_ID=\n"), (None, None));
    }

    #[test]
    fn versions_compare_by_number() {
        let v = Version::parse;
        assert!(v("1.10.0") > v("1.9.3"));
        assert!(v("2.0") == v("2.0.0"));
        assert!(v("1.0.0-rc1") < v("1.0.0"));
        assert!(v("0.1.0") < v("0.2.0"));
    }

    #[test]
    fn targets_group_into_whole_releases_newest_first() {
        let mut list = targets(&[id("0.1.0", ARCH), id("0.3.0", ARCH), id("0.2.0", ARCH)]);
        // A release missing its initrd is not offered.
        list.retain(|(n, _)| n != "corral-0.2.0-x86_64-initrd");
        // Something else's target is ignored.
        list.push(("readme.txt".into(), json!({})));
        let r = group(&list);
        let versions: Vec<_> = r.iter().map(|r| r.id.version.as_str()).collect();
        assert_eq!(versions, ["0.3.0", "0.1.0"]);
        let names: Vec<_> = r[0].parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, PARTS);
        assert_eq!(r[0].size(), 10 * PARTS.len() as u64);
    }

    #[test]
    fn a_target_named_for_another_part_is_skipped() {
        let mut list = targets(&[id("0.1.0", ARCH)]);
        list[0].0 = "corral-0.1.0-x86_64-initrd".into();
        assert!(group(&list).is_empty());
    }

    #[test]
    fn the_newest_is_chosen_and_older_or_the_same_build_refused_without_force() {
        let r = group(&targets(&[
            id("0.1.0", ARCH),
            id("0.2.0", ARCH),
            id("0.3.0", "aarch64"),
        ]));
        let running = id("0.1.0", ARCH);
        assert_eq!(
            choose(&r, None, &running, false).unwrap().id.version,
            "0.2.0"
        );
        let newer = id("0.2.0", ARCH);
        let err = choose(&r, Some("0.1.0"), &newer, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("older than the running 0.2.0"), "{err}");
        assert!(choose(&r, Some("0.1.0"), &newer, true).is_ok());
        let err = choose(&r, None, &newer, false).unwrap_err().to_string();
        assert!(err.contains("is what runs"), "{err}");
        let err = choose(&r, Some("0.3.0"), &running, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("for aarch64"), "{err}");
        let err = choose(&r, Some("9.9"), &running, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("9.9") && err.contains("0.2.0"), "{err}");
    }
}
