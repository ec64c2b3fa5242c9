//! Files written whole or not at all: a temporary name, fsync, rename, fsync the
//! directory.

use crate::error::{io, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary name `path` is written under.
pub fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Makes `path`'s content `bytes`, atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary(path);
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("writing", path)(e));
    }
    commit(&tmp, path)
}

/// Renames a whole, synced `tmp` to `path` and syncs the directory.
pub fn commit(tmp: &Path, path: &Path) -> Result<()> {
    fs::rename(tmp, path).map_err(io("renaming into place", path))?;
    sync_dir(path)
}

/// Syncs the directory that holds `path`, so a rename in it survives a power cut.
pub fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing the directory", dir))
}
