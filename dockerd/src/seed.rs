//! A seeded image store: at build time a private dockerd on the build host loads the
//! system image archives, and its store (`image/` and `overlay2/`) ships in the root
//! image. At boot the manager copies it into the empty tmpfs data root before dockerd
//! starts, which under TCG is several times faster than `docker load` (that re-reads,
//! re-hashes and unpacks every layer). The image IDs in `index.json` are still checked
//! after the engine starts: an image the seed lacks is loaded from its archive.

use crate::engine::{wait_ready, Engine, EngineSpec};
use crate::error::{DockerdError, Result};
use crate::images::load_all;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// Where the seed lives in the root image.
pub const SEED_DIR: &str = "/usr/share/corral/system-docker-seed";

/// The parts of dockerd's data root that hold images; the rest (containerd state,
/// networks, volumes) dockerd makes itself.
pub const PARTS: &[&str] = &["image", "overlay2"];

fn io_err(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> DockerdError {
    let path = path.to_path_buf();
    let what = what.to_string();
    move |e| DockerdError::Seed {
        path,
        detail: format!("{what}: {e}"),
    }
}

/// Copies a tree, keeping symlinks and permission bits. Ownership is the copier's
/// (root), as it is in the seed.
pub fn copy_tree(from: &Path, to: &Path) -> Result<u64> {
    let mut bytes = 0;
    let meta = fs::symlink_metadata(from).map_err(io_err(from, "reading"))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(io_err(from, "reading the link"))?;
        symlink(&target, to).map_err(io_err(to, "making the link"))?;
    } else if meta.is_dir() {
        fs::create_dir_all(to).map_err(io_err(to, "making the directory"))?;
        for entry in fs::read_dir(from).map_err(io_err(from, "listing"))? {
            let entry = entry.map_err(io_err(from, "listing"))?;
            bytes += copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        fs::set_permissions(to, meta.permissions()).map_err(io_err(to, "setting the mode"))?;
    } else if meta.is_file() {
        bytes += fs::copy(from, to).map_err(io_err(to, "copying"))?;
        fs::set_permissions(to, fs::Permissions::from_mode(meta.permissions().mode()))
            .map_err(io_err(to, "setting the mode"))?;
    }
    // Device nodes and sockets: none in a store of single-layer images.
    Ok(bytes)
}

/// At boot: fills an empty data root from the seed. Returns bytes copied, or `None`
/// when there is no seed or the data root already holds images.
pub fn install(seed: &Path, data_root: &Path) -> Result<Option<u64>> {
    if !seed.join("image").is_dir() || data_root.join("image").exists() {
        return Ok(None);
    }
    let mut bytes = 0;
    for part in PARTS {
        bytes += copy_tree(&seed.join(part), &data_root.join(part))?;
    }
    Ok(Some(bytes))
}

/// At boot, when the seed sits on a read-only filesystem that overlayfs accepts as a
/// lower layer (the root's squashfs): like [`install`], but each image layer's `diff/`
/// (nearly all the bytes) is a symlink to the seed's instead of a copy. Only dockerd's
/// metadata is copied; the layers stay compressed on the squashfs and cost no RAM.
/// dockerd only ever mounts image layers as lower directories, so they are never written.
pub fn install_linked(seed: &Path, data_root: &Path) -> Result<Option<u64>> {
    if !seed.join("image").is_dir() || data_root.join("image").exists() {
        return Ok(None);
    }
    let mut bytes = copy_tree(&seed.join("image"), &data_root.join("image"))?;
    let from = seed.join("overlay2");
    let to = data_root.join("overlay2");
    fs::create_dir_all(&to).map_err(io_err(&to, "making the directory"))?;
    for entry in fs::read_dir(&from).map_err(io_err(&from, "listing"))? {
        let entry = entry.map_err(io_err(&from, "listing"))?;
        let layer = entry.path();
        let dest = to.join(entry.file_name());
        if entry.file_name() == "l" || !layer.join("diff").is_dir() {
            bytes += copy_tree(&layer, &dest)?;
            continue;
        }
        fs::create_dir_all(&dest).map_err(io_err(&dest, "making the directory"))?;
        for part in fs::read_dir(&layer).map_err(io_err(&layer, "listing"))? {
            let part = part.map_err(io_err(&layer, "listing"))?;
            let target = dest.join(part.file_name());
            if part.file_name() == "diff" {
                symlink(part.path(), &target).map_err(io_err(&target, "making the link"))?;
            } else {
                bytes += copy_tree(&part.path(), &target)?;
            }
        }
    }
    Ok(Some(bytes))
}

/// At build time: loads the archives of `images_dir` into a private dockerd under
/// `scratch` and moves its store to `out`.
pub async fn make(images_dir: &Path, scratch: &Path, out: &Path) -> Result<()> {
    let _ = fs::remove_dir_all(scratch);
    let _ = fs::remove_dir_all(out);
    let spec = EngineSpec::system_at(scratch);
    let engine = Engine::start(&spec)?;
    let ready = wait_ready(&spec, Duration::from_secs(120)).await;
    let loaded = match ready {
        Ok(docker) => load_all(&docker, images_dir).await,
        Err(e) => Err(e),
    };
    engine.stop(Duration::from_secs(30)).await;
    for (name, outcome) in loaded? {
        outcome.map_err(|e| DockerdError::Seed {
            path: images_dir.join(&name),
            detail: e.to_string(),
        })?;
    }
    fs::create_dir_all(out).map_err(io_err(out, "making the directory"))?;
    for part in PARTS {
        let from = spec.data_root.join(part);
        // The scratch engine may sit on another filesystem (a tmpfs /tmp).
        if fs::rename(&from, out.join(part)).is_err() {
            copy_tree(&from, &out.join(part))?;
        }
    }
    let _ = fs::remove_dir_all(scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_copies_links_and_modes_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let seed = tmp.path().join("seed");
        fs::create_dir_all(seed.join("image/overlay2")).expect("mkdir");
        fs::create_dir_all(seed.join("overlay2/abc/diff/usr/bin")).expect("mkdir");
        fs::create_dir_all(seed.join("overlay2/l")).expect("mkdir");
        fs::write(seed.join("overlay2/abc/diff/usr/bin/tool"), "x").expect("write");
        fs::set_permissions(
            seed.join("overlay2/abc/diff/usr/bin/tool"),
            fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        symlink("../abc/diff", seed.join("overlay2/l/SHORT")).expect("symlink");
        let data = tmp.path().join("data");
        fs::create_dir_all(&data).expect("mkdir");
        assert_eq!(install(&seed, &data).expect("install"), Some(1));
        let tool = data.join("overlay2/abc/diff/usr/bin/tool");
        assert_eq!(
            fs::metadata(&tool).expect("tool").permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            fs::read_link(data.join("overlay2/l/SHORT")).expect("link"),
            Path::new("../abc/diff")
        );
        assert_eq!(
            install(&seed, &data).expect("again"),
            None,
            "a filled data root is left alone"
        );
        assert_eq!(
            install(&tmp.path().join("none"), &data).expect("no seed"),
            None
        );
        // Linked: the same store, with the layer's diff pointing into the seed.
        let linked = tmp.path().join("linked");
        fs::write(seed.join("overlay2/abc/link"), "SHORT").expect("write");
        assert!(install_linked(&seed, &linked).expect("install").is_some());
        assert_eq!(
            fs::read_link(linked.join("overlay2/abc/diff")).expect("diff is a link"),
            seed.join("overlay2/abc/diff")
        );
        assert_eq!(
            fs::read_to_string(linked.join("overlay2/abc/diff/usr/bin/tool")).expect("read"),
            "x"
        );
        assert_eq!(
            fs::read_to_string(linked.join("overlay2/abc/link")).expect("copied"),
            "SHORT"
        );
        assert_eq!(
            fs::read_link(linked.join("overlay2/l/SHORT")).expect("link"),
            Path::new("../abc/diff")
        );
        assert!(linked.join("image/overlay2").is_dir());
        assert_eq!(install_linked(&seed, &linked).expect("again"), None);
    }
}
