//! The self-contained update file (`corral-<version>-<arch>.update`): an uncompressed
//! tar of one publication's repository, `metadata/` (the roots, timestamp, snapshot and
//! targets metadata) and `targets/` (only that release's files), so `corral os upgrade
//! --from FILE` verifies it exactly as it verifies a repository on a web server. What it
//! holds is trusted only once the signed metadata inside says so; reading it is bounded
//! (at most [`MAX_ENTRIES`] entries, plain files under those two folders, no `..`).

use crate::error::{io, Result, UpdateError};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// More entries than a publication ever has: metadata and three targets.
pub const MAX_ENTRIES: usize = 64;

/// Writes the update file: every root metadata version, the timestamp, the snapshot and
/// targets metadata of `version`, then `files` from `targets`.
pub fn write(
    path: &Path,
    metadata: &Path,
    version: u64,
    targets: &Path,
    files: &[String],
) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(metadata)
        .map_err(io("reading", metadata))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".root.json"))
        .collect();
    names.sort();
    names.push("timestamp.json".into());
    names.push(format!("{version}.snapshot.json"));
    names.push(format!("{version}.targets.json"));
    let tmp = crate::fsutil::temporary(path);
    let written = (|| -> std::io::Result<()> {
        let file = fs::File::create(&tmp)?;
        let mut tar = tar::Builder::new(file);
        tar.mode(tar::HeaderMode::Deterministic);
        for name in &names {
            tar.append_path_with_name(metadata.join(name), format!("metadata/{name}"))?;
        }
        for name in files {
            tar.append_path_with_name(targets.join(name), format!("targets/{name}"))?;
        }
        tar.into_inner()?.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("writing the update file", path)(e));
    }
    crate::fsutil::commit(&tmp, path)
}

/// Where a file's bytes are: a range of a file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub file: PathBuf,
    pub offset: u64,
    pub size: u64,
}

/// An update file's index: each member's name and where its bytes are.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub path: PathBuf,
    entries: HashMap<String, Blob>,
}

impl Bundle {
    pub fn open(path: &Path) -> Result<Bundle> {
        let bad = |detail: String| UpdateError::Bundle {
            path: path.to_path_buf(),
            detail,
        };
        let file = fs::File::open(path).map_err(io("opening the update file", path))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let iter = archive
            .entries_with_seek()
            .map_err(|e| bad(format!("not a tar file: {e}")))?;
        for (n, entry) in iter.enumerate() {
            if n >= MAX_ENTRIES {
                return Err(bad(format!("more than {MAX_ENTRIES} entries")));
            }
            let entry = entry.map_err(|e| bad(format!("entry {}: {e}", n + 1)))?;
            let name = entry
                .path()
                .map_err(|e| bad(format!("entry {}: {e}", n + 1)))?
                .to_string_lossy()
                .to_string();
            let plain = entry.header().entry_type() == tar::EntryType::Regular;
            let (dir, file) = name.split_once('/').unwrap_or(("", ""));
            if !plain
                || !matches!(dir, "metadata" | "targets")
                || file.is_empty()
                || file.contains('/')
                || file.starts_with('.')
            {
                return Err(bad(format!(
                    "entry '{name}' is not a file of metadata/ or targets/"
                )));
            }
            let blob = Blob {
                file: path.to_path_buf(),
                offset: entry.raw_file_position(),
                size: entry.size(),
            };
            entries.insert(name, blob);
        }
        if !entries.keys().any(|k| k == "metadata/timestamp.json") {
            return Err(bad("it has no metadata/timestamp.json".into()));
        }
        Ok(Bundle {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The member `name` (`metadata/timestamp.json`, `targets/<sha>.<name>`).
    pub fn get(&self, name: &str) -> Option<&Blob> {
        self.entries.get(name)
    }
}
