//! The volumes NoCloud and the config drive come on: found by filesystem label, mounted
//! read-only under `/run/corral/media`, read, unmounted. [`Media`] is the seam tests
//! replace; a source given a directory (`nocloud:/path`) reads it without mounting.

use super::{fatal, Env, Fetched};
use crate::error::Result;
use crate::userdata::MAX_USER_DATA;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Mounting the volumes NoCloud and the config drive come on.
pub trait Media: Send + Sync {
    /// Devices carrying a filesystem with one of `labels`.
    fn find(&self, labels: &[&str]) -> Vec<PathBuf>;
    /// Mounts `device` read-only and returns where.
    fn mount(&self, device: &Path) -> std::io::Result<PathBuf>;
    fn unmount(&self, dir: &Path);
}

/// The real machine's block devices, mounted under `/run/corral/media`.
pub struct RealMedia;

impl Media for RealMedia {
    fn find(&self, labels: &[&str]) -> Vec<PathBuf> {
        corral_host::label::find(Path::new("/sys/class/block"), Path::new("/dev"), labels)
            .into_iter()
            .map(|(dev, _)| dev)
            .collect()
    }

    fn mount(&self, device: &Path) -> std::io::Result<PathBuf> {
        use nix::mount::MsFlags;
        let name = device.file_name().unwrap_or_default();
        let dir = Path::new("/run/corral/media").join(name);
        std::fs::create_dir_all(&dir)?;
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let mut last = nix::Error::ENODEV;
        for fstype in ["iso9660", "vfat", "ext4"] {
            match nix::mount::mount(Some(device), &dir, Some(fstype), flags, None::<&str>) {
                Ok(()) => return Ok(dir),
                Err(e) => last = e,
            }
        }
        Err(std::io::Error::from(last))
    }

    fn unmount(&self, dir: &Path) {
        let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(dir);
    }
}

/// Reads a source's files from where its volume is mounted; the second argument names
/// the source for messages and `Fetched::source`.
pub type Reader = fn(&Path, String) -> Result<Fetched>;

/// A volume source: a directory when one is given, else the first labelled device.
pub fn on_volume(
    source: &str,
    dir: &Option<String>,
    labels: &[&str],
    env: &Env,
    read: Reader,
) -> Result<Option<Fetched>> {
    if let Some(dir) = dir {
        let dir = Path::new(dir);
        return if dir.is_dir() {
            read(dir, source.to_string()).map(Some)
        } else {
            Ok(None)
        };
    }
    let Some(device) = env.media.find(labels).into_iter().next() else {
        return Ok(None);
    };
    let at = env
        .media
        .mount(&device)
        .map_err(|e| fatal(format!("{source}: mounting {}", device.display()), e))?;
    let result = read(&at, format!("{source}:{}", device.display()));
    env.media.unmount(&at);
    result.map(Some)
}

/// A file's bytes, at most one more than user-data may have (so a larger one is seen
/// as too large where it is parsed).
pub fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_USER_DATA as u64 + 1).read_to_end(&mut out))
        .map_err(|e| fatal(format!("reading {}", path.display()), e))?;
    Ok(out)
}

/// [`read_capped`], or nothing when the file is not there.
pub fn read_optional(path: &Path) -> Result<Vec<u8>> {
    if path.exists() {
        read_capped(path)
    } else {
        Ok(Vec::new())
    }
}
