//! dist/manifest.json: every artifact with its size and sha256, and the packages it was
//! built from.

use crate::apt::{sha256_file, Deb};
use crate::error::{BuildError, Result};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct Artifact {
    pub name: String,
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub version: String,
    /// What made the root (`BUILD_ID` in os-release).
    pub build_id: String,
    pub kernel: String,
    pub cmdline: String,
    pub artifacts: Vec<Artifact>,
    /// The system images in the root, with their digests.
    pub images: Vec<corral_dockerd::images::Archive>,
    pub packages: Vec<String>,
    /// The signed update this build published.
    pub update: Option<UpdateArtifacts>,
}

/// Where the build put its signed update, for scripts (docs/upgrades.md).
#[derive(Debug, Serialize)]
pub struct UpdateArtifacts {
    /// The self-contained update file (`corral os upgrade --from FILE`).
    pub file: String,
    /// The repository folder to serve (`corral.upgrade.url`).
    pub repository: String,
    /// The root metadata built into the images.
    pub root: String,
}

impl Artifact {
    pub fn of(path: &Path) -> Result<Artifact> {
        let meta = std::fs::metadata(path).map_err(BuildError::read(path))?;
        Ok(Artifact {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.display().to_string(),
            size: meta.len(),
            sha256: digest(path, &meta)?,
        })
    }
}

/// The sha256 of `path`, taken from `<path>.sha256` when that file records the
/// artifact's current size and modification time, else computed and recorded there.
/// Every `make dist` (and so `make run`) writes the manifest; re-hashing an unchanged
/// 1 GiB disk image each time cost ~7 s.
fn digest(path: &Path, meta: &std::fs::Metadata) -> Result<String> {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = format!("{} {mtime}", meta.len());
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".sha256");
    let sidecar = std::path::PathBuf::from(sidecar);
    if let Ok(text) = std::fs::read_to_string(&sidecar) {
        if let Some((recorded, sha)) = text.trim().rsplit_once(' ') {
            if recorded == key && sha.len() == 64 {
                return Ok(sha.to_string());
            }
        }
    }
    let sha = sha256_file(path)?;
    // Only a cache: a failed write costs the next build one more hash.
    let _ = std::fs::write(&sidecar, format!("{key} {sha}\n"));
    Ok(sha)
}

impl Manifest {
    pub fn new(version: &str, kernel: &str, cmdline: &str, debs: &[Deb]) -> Manifest {
        Manifest {
            version: version.into(),
            build_id: String::new(),
            kernel: kernel.into(),
            cmdline: cmdline.into(),
            artifacts: Vec::new(),
            images: Vec::new(),
            packages: debs
                .iter()
                .map(|d| format!("{} {} {}", d.name, d.version, d.archive))
                .collect(),
            update: None,
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| BuildError::Spec {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        std::fs::write(path, text + "\n").map_err(BuildError::write(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_reused_while_the_file_is_unchanged_and_redone_after() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("corral.img");
        std::fs::write(&file, b"first").unwrap();
        let first = Artifact::of(&file).unwrap();
        assert_eq!(first.sha256, sha256_file(&file).unwrap());
        // The record is what a second call reads: doctor it to see it is used.
        let sidecar = dir.path().join("corral.img.sha256");
        let text = std::fs::read_to_string(&sidecar).unwrap();
        let doctored = text.replace(&first.sha256, &"0".repeat(64));
        std::fs::write(&sidecar, doctored).unwrap();
        assert_eq!(Artifact::of(&file).unwrap().sha256, "0".repeat(64));
        // A changed file (other size) is hashed again.
        std::fs::write(&file, b"second, longer").unwrap();
        assert_eq!(
            Artifact::of(&file).unwrap().sha256,
            sha256_file(&file).unwrap()
        );
    }
}
