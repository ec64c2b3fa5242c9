//! Unpacking .deb files (with dpkg-deb, the reference implementation) into a per-package
//! cache, so a rebuild unpacks only what changed.

use crate::apt::Deb;
use crate::error::{BuildError, Result};
use crate::host;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Unpacks `deb_file` under `cache/unpacked/`, once; returns the tree's root.
pub fn unpack(cache: &Path, deb: &Deb, deb_file: &Path) -> Result<PathBuf> {
    let dir = cache
        .join("unpacked")
        .join(deb.filename.trim_end_matches(".deb"));
    // Appended, not `with_extension`: that would cut the version at its last dot, and
    // two versions of a package would share one marker.
    let mut done = dir.clone().into_os_string();
    done.push(".complete");
    let done = PathBuf::from(done);
    if done.exists() && dir.is_dir() {
        return Ok(dir);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(BuildError::write(&dir))?;
    }
    fs::create_dir_all(&dir).map_err(BuildError::write(&dir))?;
    host::require("dpkg-deb")?;
    host::run(Command::new("dpkg-deb").arg("-x").arg(deb_file).arg(&dir))?;
    fs::write(&done, &deb.sha256).map_err(BuildError::write(&done))?;
    Ok(dir)
}
