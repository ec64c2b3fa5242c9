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
    pub kernel: String,
    pub cmdline: String,
    pub artifacts: Vec<Artifact>,
    /// The system images in the root, with their digests.
    pub images: Vec<corral_system_docker::images::Archive>,
    pub packages: Vec<String>,
}

impl Artifact {
    pub fn of(path: &Path) -> Result<Artifact> {
        let size = std::fs::metadata(path)
            .map_err(BuildError::read(path))?
            .len();
        Ok(Artifact {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.display().to_string(),
            size,
            sha256: sha256_file(path)?,
        })
    }
}

impl Manifest {
    pub fn new(version: &str, kernel: &str, cmdline: &str, debs: &[Deb]) -> Manifest {
        Manifest {
            version: version.into(),
            kernel: kernel.into(),
            cmdline: cmdline.into(),
            artifacts: Vec::new(),
            images: Vec::new(),
            packages: debs
                .iter()
                .map(|d| format!("{} {}", d.name, d.version))
                .collect(),
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
