//! Preloading the user engine (RancherOS's `/var/lib/rancher/preload/docker`): image
//! archives (`.tar`, `.tar.gz`, `.tgz`, what `docker save` writes, gzipped or not) put in
//! [`crate::PRELOAD_DIR`] are loaded once each at boot. A marker `.<name>.done` beside
//! the archive records the size and modification time loaded; a replaced archive is
//! loaded again, a failed one is tried again at the next boot.

use bollard::Docker;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The archives in `dir` not loaded yet (or changed since), in name order.
pub fn pending(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_archive(p) && p.is_file())
        .filter(|p| std::fs::read_to_string(marker(p)).ok() != stamp(p))
        .collect();
    out.sort();
    out
}

fn is_archive(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.')
        && [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// `.<name>.done`, beside the archive.
pub fn marker(archive: &Path) -> PathBuf {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    archive.with_file_name(format!(".{name}.done"))
}

/// What the marker holds for the archive as it is now: size and mtime.
fn stamp(archive: &Path) -> Option<String> {
    let m = std::fs::metadata(archive).ok()?;
    Some(format!("{} {}.{:09}\n", m.len(), m.mtime(), m.mtime_nsec()))
}

/// Loads one archive (`docker load`; the engine takes gzip itself) and marks it done.
/// Returns the image tags it loaded.
pub async fn load(docker: &Docker, archive: &Path) -> Result<Vec<String>, String> {
    use corral_dockerd::images::{load_file, LoadFailure};
    let loaded = load_file(docker, archive).await.map_err(|e| match e {
        LoadFailure::Open(e) => format!("cannot read it: {e}"),
        LoadFailure::Engine(e) => format!("docker load failed: {e}"),
    })?;
    if let Some(text) = stamp(archive) {
        std::fs::write(marker(archive), text)
            .map_err(|e| format!("loaded, but marking it done failed: {e}"))?;
    }
    Ok(loaded)
}

/// Loads every pending archive in `dir`; one failure does not stop the others.
pub async fn load_all(docker: &Docker, dir: &Path) -> Vec<(PathBuf, Result<Vec<String>, String>)> {
    let mut out = Vec::new();
    for archive in pending(dir) {
        let result = load(docker, &archive).await;
        out.push((archive, result));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_pending_until_marked_and_again_when_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for f in ["b.tar", "a.tar.gz", "c.tgz", "notes.txt", ".hidden.tar"] {
            std::fs::write(d.join(f), f).expect("write");
        }
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(pending(d)), ["a.tar.gz", "b.tar", "c.tgz"]);
        let b = d.join("b.tar");
        std::fs::write(marker(&b), stamp(&b).expect("stamp")).expect("mark");
        assert_eq!(names(pending(d)), ["a.tar.gz", "c.tgz"]);
        std::fs::write(&b, "a new, longer archive").expect("replace");
        assert_eq!(names(pending(d)), ["a.tar.gz", "b.tar", "c.tgz"]);
        assert!(pending(&d.join("missing")).is_empty());
    }
}
