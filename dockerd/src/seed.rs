//! A seeded image store: at build time a private dockerd on the build host loads the
//! system image archives, and its store (`image/` and `overlay2/`) ships in the root
//! image. At boot the manager puts it into the empty data root before dockerd starts,
//! which under TCG is many times faster than `docker load` (that re-reads, re-hashes
//! and unpacks every layer): when the root image is a squashfs the layers are linked
//! to it and only dockerd's metadata is copied ([`install_linked`]), else the whole
//! store is copied ([`install`]). The image IDs in `index.json` are still checked
//! after the engine starts: an image the seed lacks is loaded from its archive. A seed
//! is written under temporary names and put in place only once it is whole and on
//! disk, so a power cut during a state disk's first boot leaves nothing a later boot
//! trusts.

use crate::engine::{wait_ready, Engine, EngineSpec};
use crate::error::{DockerdError, Result};
use crate::images::load_all;
use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// Where the seed lives in the root image.
pub const SEED_DIR: &str = "/usr/share/corral/system-docker-seed";

/// The parts of dockerd's data root that hold images; the rest (containerd state,
/// networks, volumes) dockerd makes itself. In the order a seed puts them in place:
/// `image` last, so that its presence means a whole store.
pub const PARTS: &[&str] = &["overlay2", "image"];

/// What a part is called while it is being copied; renamed to its own name once whole.
const PARTIAL: &str = ".seeding";

/// A file in the seed, written by the build: the room its copy takes on a filesystem of
/// 4 KiB blocks, in bytes ([`footprint`]). A seed without it is copied unchecked.
pub const FOOTPRINT_FILE: &str = "footprint";

/// A file in the seed, written by the build: what the seed is (its fingerprint), so a
/// data root seeded by another version is recognised.
pub const ID_FILE: &str = "id";

/// The file in a data root that names the seed it was filled from ([`ID_FILE`]'s text).
pub const MARKER: &str = ".corral-seed";

/// What stays in a data root seeded again for another version: the services' volumes,
/// and a broken store kept aside.
fn kept_across_versions(name: &str) -> bool {
    name == "volumes" || name.starts_with(".corrupt-")
}

/// Room kept free beyond the seed's footprint: for the engine's own first writes
/// (containerd's state, networks) and the filesystem's metadata.
const HEADROOM: u64 = 32 << 20;

/// An I/O error on `path` while doing `what`, as the error `kind` makes it.
fn path_err(
    kind: fn(std::path::PathBuf, String) -> DockerdError,
    path: &Path,
    what: &str,
) -> impl FnOnce(std::io::Error) -> DockerdError {
    let path = path.to_path_buf();
    let what = what.to_string();
    move |e| kind(path, format!("{what}: {e}"))
}

/// An I/O error of the seed's.
fn io_err(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> DockerdError {
    path_err(
        |path, detail| DockerdError::Seed { path, detail },
        path,
        what,
    )
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

/// Whether `data_root` should be seeded: there is a seed and the data root has no
/// store (`image/`, which a seed puts in place last and dockerd makes at its first
/// start). What a seed cut short left behind (a power cut during the first boot of a
/// state disk) is removed first, so that it is done again whole rather than trusted.
fn begin(seed: &Path, data_root: &Path) -> Result<bool> {
    if !seed.join("image").is_dir() {
        return Ok(false);
    }
    if data_root.join("image").exists() {
        let why = if let Some(why) = seeded_by_another(seed, data_root) {
            why
        } else if let Some(lost) = lost_link(data_root) {
            format!(
                "links layers into a root image that is not mounted now ('{}' is gone)",
                lost.display()
            )
        } else {
            return Ok(false);
        };
        clear_for(seed, data_root, &why)?;
    }
    for part in PARTS {
        for left in [data_root.join(part), partial(data_root, part)] {
            if fs::symlink_metadata(&left).is_ok() {
                log::warn!(
                    "removing '{}', left by a seed cut short; seeding again",
                    left.display()
                );
                fs::remove_dir_all(&left).map_err(io_err(&left, "removing a seed cut short"))?;
            }
        }
    }
    fs::create_dir_all(data_root).map_err(io_err(data_root, "making the directory"))?;
    log::info!(
        "seeding the image store at '{}' from '{}'",
        data_root.display(),
        seed.display()
    );
    Ok(true)
}

/// The seed's id, when the build recorded one.
fn seed_id(seed: &Path) -> Option<String> {
    fs::read_to_string(seed.join(ID_FILE))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// When a filled data root was seeded from another seed than `seed` (another version
/// of Corral, or one from before the marker existed): what the log says of it.
fn seeded_by_another(seed: &Path, data_root: &Path) -> Option<String> {
    let want = seed_id(seed)?;
    let have = fs::read_to_string(data_root.join(MARKER)).unwrap_or_default();
    match have.trim() {
        same if same == want => None,
        "" => Some("was seeded by an earlier version".to_string()),
        other => Some(format!("was seeded by another version ({other})")),
    }
}

/// The first image layer of a linked store ([`install_linked`]) whose files are gone:
/// its `diff` links into a root image other than the one mounted now (a boot from a
/// root that is not a squashfs, with the same state partition). `None` when every
/// link holds, or the store has copies.
fn lost_link(data_root: &Path) -> Option<std::path::PathBuf> {
    fs::read_dir(data_root.join("overlay2"))
        .ok()?
        .flatten()
        .map(|layer| layer.path().join("diff"))
        .find(|diff| {
            fs::symlink_metadata(diff).is_ok_and(|m| m.file_type().is_symlink()) && !diff.is_dir()
        })
}

/// Empties a data root that cannot stay (seeded by another version, or linked into a
/// root image that is gone; `why` says which), but for its volumes, so that this
/// version's dockerd never runs over a store another one wrote: the system images are
/// seeded again, and the manager makes the services' containers again.
fn clear_for(seed: &Path, data_root: &Path, why: &str) -> Result<()> {
    log::warn!(
        "the system engine's store at '{}' {why}; this version's ({}) is seeded in its \
         place (the services' containers are made again, their volumes kept)",
        data_root.display(),
        seed_id(seed).unwrap_or_default()
    );
    for entry in fs::read_dir(data_root).map_err(io_err(data_root, "listing"))? {
        let entry = entry.map_err(io_err(data_root, "listing"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if kept_across_versions(&name) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(io_err(&path, "removing another version's store"))?;
    }
    Ok(())
}

/// Records which seed filled `data_root`, before [`commit`] syncs it.
fn mark_seeded(seed: &Path, data_root: &Path) -> Result<()> {
    if let Some(id) = seed_id(seed) {
        let marker = data_root.join(MARKER);
        fs::write(&marker, format!("{id}\n")).map_err(io_err(&marker, "writing"))?;
    }
    Ok(())
}

/// Removes what a seed that failed part way left in `data_root` (its `.seeding` parts),
/// so that it does not hold the room the failure lacked.
pub fn discard_partial(data_root: &Path) -> Result<()> {
    for part in PARTS {
        let left = partial(data_root, part);
        if fs::symlink_metadata(&left).is_ok() {
            fs::remove_dir_all(&left).map_err(io_err(&left, "removing a failed seed"))?;
        }
    }
    Ok(())
}

fn partial(data_root: &Path, part: &str) -> std::path::PathBuf {
    data_root.join(format!("{part}{PARTIAL}"))
}

/// Puts the copied parts in place: everything copied reaches the disk first (syncfs),
/// then each part is renamed to its name, `image` last, then the directory is synced.
/// A power cut before the last rename leaves no `image/`, so the next boot seeds again.
fn commit(data_root: &Path) -> Result<()> {
    let dir = fs::File::open(data_root).map_err(io_err(data_root, "opening"))?;
    nix::unistd::syncfs(&dir).map_err(|e| DockerdError::Seed {
        path: data_root.to_path_buf(),
        detail: format!("syncing the copied store: {e}"),
    })?;
    for part in PARTS {
        let to = data_root.join(part);
        fs::rename(partial(data_root, part), &to).map_err(io_err(&to, "putting in place"))?;
    }
    dir.sync_all()
        .map_err(io_err(data_root, "syncing the directory"))
}

/// The room a tree takes on a filesystem of 4 KiB blocks: each file's size rounded up
/// to whole blocks, a block for each directory and link. The build records the seed's
/// in [`FOOTPRINT_FILE`].
pub fn footprint(tree: &Path) -> Result<u64> {
    const BLOCK: u64 = 4096;
    let meta = fs::symlink_metadata(tree).map_err(io_err(tree, "reading"))?;
    if !meta.is_dir() {
        return Ok(meta.len().div_ceil(BLOCK).max(1) * BLOCK);
    }
    let mut total = BLOCK;
    for entry in fs::read_dir(tree).map_err(io_err(tree, "listing"))? {
        let entry = entry.map_err(io_err(tree, "listing"))?;
        total += footprint(&entry.path())?;
    }
    Ok(total)
}

/// Whether the filesystem of `data_root` has room for the seed's copy: the footprint
/// the build recorded plus [`HEADROOM`], against what `statvfs` says is free.
/// Refused before anything is written, so a state partition too small for the store
/// (the image on a disk of its own size) is not filled and emptied again at every boot.
fn check_room(seed: &Path, data_root: &Path) -> Result<()> {
    let recorded = seed.join(FOOTPRINT_FILE);
    let Some(needed) = fs::read_to_string(&recorded)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    else {
        return Ok(());
    };
    let stat = nix::sys::statvfs::statvfs(data_root).map_err(|e| DockerdError::Seed {
        path: data_root.to_path_buf(),
        detail: format!("reading the free space: {e}"),
    })?;
    let free = stat.blocks_available().saturating_mul(stat.fragment_size());
    let wanted = needed.saturating_add(HEADROOM);
    if free < wanted {
        return Err(DockerdError::Seed {
            path: data_root.to_path_buf(),
            detail: format!(
                "{} MB free, the store's copy needs {} MB; nothing was copied",
                free / 1_000_000,
                wanted.div_ceil(1_000_000)
            ),
        });
    }
    Ok(())
}

/// At boot: fills an empty data root from the seed, or one another version's seed filled
/// (emptied first but for its volumes). Returns bytes copied, or `None` when there is no
/// seed or the data root already holds this seed's images. Refused before any
/// write when the filesystem lacks the room ([`check_room`]). Each part is copied
/// under a temporary name and put in place by [`commit`].
pub fn install(seed: &Path, data_root: &Path) -> Result<Option<u64>> {
    if !begin(seed, data_root)? {
        return Ok(None);
    }
    check_room(seed, data_root)?;
    let mut bytes = 0;
    for part in PARTS {
        bytes += copy_tree(&seed.join(part), &partial(data_root, part))?;
    }
    mark_seeded(seed, data_root)?;
    commit(data_root)?;
    Ok(Some(bytes))
}

/// At boot, when the seed sits on a read-only filesystem that overlayfs accepts as a
/// lower layer (the root's squashfs): like [`install`], but each image layer's `diff/`
/// (nearly all the bytes) is a symlink to the seed's instead of a copy. Only dockerd's
/// metadata is copied; the layers stay compressed on the squashfs and cost neither RAM
/// (a tmpfs data root) nor the state partition's room and a first boot's copy (a disk).
/// dockerd only ever mounts image layers as lower directories, so they are never written.
/// The links hold as long as this seed's root image is mounted: another version's root
/// brings another seed id, and a store whose links point at nothing is seeded again
/// ([`begin`]), so upgrades and rollbacks reseed in a second rather than copy.
pub fn install_linked(seed: &Path, data_root: &Path) -> Result<Option<u64>> {
    if !begin(seed, data_root)? {
        return Ok(None);
    }
    let mut bytes = copy_tree(&seed.join("image"), &partial(data_root, "image"))?;
    let from = seed.join("overlay2");
    let to = partial(data_root, "overlay2");
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
    mark_seeded(seed, data_root)?;
    commit(data_root)?;
    Ok(Some(bytes))
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = fs::read(path).map_err(io_err(path, "reading"))?;
    serde_json::from_slice(&text).map_err(|e| DockerdError::Seed {
        path: path.to_path_buf(),
        detail: format!("parsing: {e}"),
    })
}

/// `sha256:<64 hex digits>`'s digits, or `None`.
fn sha256_hex(id: &str) -> Option<&str> {
    id.strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The layer directories of image `reference` in a store (a seed or a data root), top
/// first, the order overlayfs takes for `lowerdir`. Read from dockerd's own files
/// (`repositories.json`, the image's config, the layer database), so an image's files
/// can be used with no engine running: the manager's rescue console does.
pub fn layers(store: &Path, reference: &str) -> Result<Vec<std::path::PathBuf>> {
    let meta = store.join("image/overlay2");
    let fail = |path: &Path, detail: String| DockerdError::Seed {
        path: path.to_path_buf(),
        detail,
    };
    let repos_path = meta.join("repositories.json");
    let repos = read_json(&repos_path)?;
    let names = [reference.to_string(), format!("docker.io/{reference}")];
    let id = repos["Repositories"]
        .as_object()
        .into_iter()
        .flat_map(|repos| repos.values())
        .filter_map(|tags| tags.as_object())
        .find_map(|tags| names.iter().find_map(|n| tags.get(n)?.as_str()))
        .ok_or_else(|| fail(&repos_path, format!("no image {reference}")))?;
    let hex = sha256_hex(id).ok_or_else(|| fail(&repos_path, format!("bad image ID {id:?}")))?;
    let config_path = meta.join("imagedb/content/sha256").join(hex);
    let config = read_json(&config_path)?;
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|d| d.as_str()).collect())
        .unwrap_or_default();
    if diff_ids.is_empty() {
        return Err(fail(&config_path, "no layers".into()));
    }
    let mut chain = String::new();
    let mut dirs = Vec::new();
    for diff in diff_ids {
        // The layer database is keyed by chain ID: the first layer's diff ID, then
        // sha256 of "<chain below> <diff ID>".
        chain = if chain.is_empty() {
            diff.to_string()
        } else {
            format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{chain} {diff}")))
            )
        };
        let chain_hex =
            sha256_hex(&chain).ok_or_else(|| fail(&config_path, format!("bad layer {diff:?}")))?;
        let cache_path = meta.join("layerdb/sha256").join(chain_hex).join("cache-id");
        let cache = fs::read_to_string(&cache_path).map_err(io_err(&cache_path, "reading"))?;
        let cache = cache.trim();
        if cache.is_empty() || !cache.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(fail(&cache_path, format!("bad cache ID {cache:?}")));
        }
        dirs.push(store.join("overlay2").join(cache).join("diff"));
    }
    dirs.reverse();
    Ok(dirs)
}

/// An I/O error of [`move_aside`] and [`make_room`].
fn aside_err(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> DockerdError {
    path_err(
        |path, detail| DockerdError::MoveAside { path, detail },
        path,
        what,
    )
}

/// What a broken data root's contents are moved into, inside the data root itself (it is
/// a mount point, which cannot be renamed): `.corrupt-<seconds since 1970>`.
pub const CORRUPT_PREFIX: &str = ".corrupt-";

/// Moves everything in `data_root` into a new `.corrupt-<time>` directory in it, so that
/// an engine that cannot start from it starts empty (and is seeded again) while what was
/// there is kept for a look. An older such directory is removed first: one is kept.
/// Returns where the contents went.
pub fn move_aside(data_root: &Path) -> Result<std::path::PathBuf> {
    let entries: Vec<fs::DirEntry> = fs::read_dir(data_root)
        .map_err(aside_err(data_root, "listing"))?
        .collect::<std::io::Result<_>>()
        .map_err(aside_err(data_root, "listing"))?;
    for entry in &entries {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(CORRUPT_PREFIX)
        {
            let old = entry.path();
            fs::remove_dir_all(&old).map_err(aside_err(&old, "removing an older copy"))?;
        }
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let aside = data_root.join(format!("{CORRUPT_PREFIX}{secs}"));
    fs::create_dir(&aside).map_err(aside_err(&aside, "making the directory"))?;
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(CORRUPT_PREFIX) {
            continue;
        }
        let to = aside.join(&name);
        fs::rename(entry.path(), &to).map_err(aside_err(&to, "moving aside"))?;
    }
    Ok(aside)
}

/// After [`move_aside`]: when the seed's copy would not fit beside the copy kept for a
/// look (`aside`), that copy is removed, since a store on the disk matters more than
/// the evidence (else every later boot would run the engine from RAM until someone
/// deleted it). Returns whether it was removed.
pub fn make_room(seed: &Path, data_root: &Path, aside: &Path) -> Result<bool> {
    if check_room(seed, data_root).is_ok() {
        return Ok(false);
    }
    fs::remove_dir_all(aside).map_err(aside_err(aside, "removing it to make room"))?;
    Ok(true)
}

/// At build time: loads the archives of `images_dir` into a private dockerd under
/// `scratch` and moves its store to `out`.
pub async fn make(images_dir: &Path, scratch: &Path, out: &Path) -> Result<()> {
    let _ = fs::remove_dir_all(scratch);
    let _ = fs::remove_dir_all(out);
    let spec = EngineSpec::system_at(scratch);
    let mut engine = Engine::start(&spec).await?;
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
    fn a_store_seeded_by_another_version_is_seeded_again_with_its_volumes_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let seed = tmp.path().join("seed");
        fs::create_dir_all(seed.join("image/overlay2")).expect("mkdir");
        fs::create_dir_all(seed.join("overlay2/abc/diff")).expect("mkdir");
        fs::write(seed.join("overlay2/abc/diff/v"), "one").expect("write");
        fs::write(seed.join(ID_FILE), "one\n").expect("write");
        let data = tmp.path().join("data");
        fs::create_dir_all(&data).expect("mkdir");
        assert!(install(&seed, &data).expect("seed").is_some());
        assert_eq!(
            fs::read_to_string(data.join(MARKER)).expect("marker"),
            "one\n"
        );
        assert_eq!(
            install(&seed, &data).expect("same"),
            None,
            "the same version: kept"
        );
        // What the engine made meanwhile.
        fs::create_dir_all(data.join("volumes/logs/_data")).expect("mkdir");
        fs::write(data.join("volumes/logs/_data/x"), "keep").expect("write");
        fs::create_dir_all(data.join("containers/c1")).expect("mkdir");
        // Another version's seed.
        fs::write(seed.join("overlay2/abc/diff/v"), "two").expect("write");
        fs::write(seed.join(ID_FILE), "two\n").expect("write");
        assert!(install(&seed, &data).expect("seeded again").is_some());
        assert_eq!(
            fs::read_to_string(data.join("overlay2/abc/diff/v")).expect("v"),
            "two"
        );
        assert_eq!(
            fs::read_to_string(data.join(MARKER)).expect("marker"),
            "two\n"
        );
        assert!(!data.join("containers").exists(), "the old containers go");
        assert_eq!(
            fs::read_to_string(data.join("volumes/logs/_data/x")).expect("volume"),
            "keep"
        );
        // A store from before the marker counts as another version's.
        fs::remove_file(data.join(MARKER)).expect("rm");
        assert!(install(&seed, &data).expect("seeded again").is_some());
    }

    #[test]
    fn a_linked_store_whose_root_image_is_gone_is_seeded_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let seed_at = |dir: &str| {
            let seed = tmp.path().join(dir);
            fs::create_dir_all(seed.join("image/overlay2")).expect("mkdir");
            fs::create_dir_all(seed.join("overlay2/abc/diff")).expect("mkdir");
            fs::write(seed.join("overlay2/abc/diff/v"), dir).expect("write");
            fs::write(seed.join(ID_FILE), "same\n").expect("write");
            seed
        };
        let mounted = seed_at("mounted");
        let data = tmp.path().join("data");
        fs::create_dir_all(&data).expect("mkdir");
        assert!(install_linked(&mounted, &data).expect("seed").is_some());
        fs::create_dir_all(data.join("volumes/logs")).expect("the engine's volume");
        assert_eq!(install_linked(&mounted, &data).expect("kept"), None);
        // The same version's seed, read from elsewhere (a root that is not a squashfs):
        // the links point at nothing once the squashfs is not mounted.
        let copy = seed_at("copy");
        fs::remove_dir_all(&mounted).expect("unmounted");
        assert_eq!(lost_link(&data), Some(data.join("overlay2/abc/diff")));
        assert_eq!(install(&copy, &data).expect("seeded again"), Some(4));
        assert_eq!(
            fs::read_to_string(data.join("overlay2/abc/diff/v")).expect("v"),
            "copy"
        );
        assert!(!fs::symlink_metadata(data.join("overlay2/abc/diff"))
            .expect("diff")
            .file_type()
            .is_symlink());
        assert!(data.join("volumes/logs").is_dir(), "volumes are kept");
        assert_eq!(lost_link(&data), None, "copies hold");
    }

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
        for part in PARTS {
            assert!(
                !partial(&data, part).exists(),
                "{part} was renamed in place"
            );
        }
    }

    #[test]
    fn an_image_s_layers_are_found_without_an_engine() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = tmp.path();
        let meta = store.join("image/overlay2");
        let (a, b) = (
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        );
        let image = "c".repeat(64);
        fs::create_dir_all(meta.join("imagedb/content/sha256")).expect("mkdir");
        fs::write(
            meta.join("repositories.json"),
            format!(
                r#"{{"Repositories":{{"corral/console":{{"corral/console:1":"sha256:{image}"}}}}}}"#
            ),
        )
        .expect("write");
        fs::write(
            meta.join("imagedb/content/sha256").join(&image),
            format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{a}","{b}"]}}}}"#),
        )
        .expect("write");
        // The second layer's chain ID: sha256 of "<a> <b>" (worked out independently).
        let chain2 = "ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c";
        for (chain, cache) in [("a".repeat(64), "lower1"), (chain2.to_string(), "upper2")] {
            let dir = meta.join("layerdb/sha256").join(chain);
            fs::create_dir_all(&dir).expect("mkdir");
            fs::write(dir.join("cache-id"), cache).expect("write");
        }
        assert_eq!(
            layers(store, "corral/console:1").expect("layers"),
            vec![
                store.join("overlay2/upper2/diff"),
                store.join("overlay2/lower1/diff")
            ]
        );
        let err = layers(store, "corral/console:2").expect_err("no such tag");
        assert!(
            err.to_string().contains("no image corral/console:2"),
            "{err}"
        );
        fs::write(
            meta.join("layerdb/sha256")
                .join("a".repeat(64))
                .join("cache-id"),
            "../../x",
        )
        .expect("write");
        assert!(
            layers(store, "corral/console:1").is_err(),
            "a cache ID is a name, not a path"
        );
    }

    #[test]
    fn a_broken_store_is_moved_aside_and_seeded_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let seed = tmp.path().join("seed");
        fs::create_dir_all(seed.join("image/overlay2")).expect("mkdir");
        fs::create_dir_all(seed.join("overlay2/abc/diff")).expect("mkdir");
        let data = tmp.path().join("data");
        fs::create_dir_all(data.join("image/overlay2")).expect("mkdir");
        fs::write(data.join("image/overlay2/repositories.json"), "{bro").expect("write");
        fs::create_dir_all(data.join(".corrupt-1")).expect("an older copy");
        let aside = move_aside(&data).expect("moved");
        assert!(aside.starts_with(&data));
        assert_eq!(
            fs::read_to_string(aside.join("image/overlay2/repositories.json")).expect("kept"),
            "{bro"
        );
        assert!(
            !data.join(".corrupt-1").exists(),
            "one older copy kept at most"
        );
        let left: Vec<_> = fs::read_dir(&data).expect("list").collect();
        assert_eq!(left.len(), 1, "only the copy is left in the data root");
        assert!(install(&seed, &data).expect("seed").is_some());
        assert!(data.join("overlay2/abc/diff").is_dir());
    }

    #[test]
    fn a_seed_too_big_for_the_disk_is_refused_before_any_write() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let seed = tmp.path().join("seed");
        fs::create_dir_all(seed.join("image/overlay2")).expect("mkdir");
        fs::create_dir_all(seed.join("overlay2/abc/diff")).expect("mkdir");
        fs::write(seed.join("overlay2/abc/diff/file"), vec![1u8; 5000]).expect("write");
        // Three directories of the overlay2 part, one file of two blocks; the image
        // part two directories.
        assert_eq!(
            footprint(&seed.join("overlay2")).expect("footprint"),
            5 * 4096
        );
        let data = tmp.path().join("data");
        fs::create_dir_all(&data).expect("mkdir");
        // A footprint no disk here has room for.
        fs::write(seed.join(FOOTPRINT_FILE), format!("{}\n", u64::MAX / 2)).expect("write");
        let err = install(&seed, &data).expect_err("no room").to_string();
        assert!(err.contains("nothing was copied"), "{err}");
        assert_eq!(
            fs::read_dir(&data).expect("list").count(),
            0,
            "nothing written"
        );
        // The footprint the build records fits: copied.
        let fits = footprint(&seed.join("image")).expect("footprint")
            + footprint(&seed.join("overlay2")).expect("footprint");
        fs::write(seed.join(FOOTPRINT_FILE), fits.to_string()).expect("write");
        assert_eq!(install(&seed, &data).expect("room"), Some(5000));
        // A seed without the file (or with a broken one) is copied unchecked.
        let other = tmp.path().join("other");
        fs::create_dir_all(&other).expect("mkdir");
        fs::write(seed.join(FOOTPRINT_FILE), "many").expect("write");
        assert_eq!(install(&seed, &other).expect("unchecked"), Some(5000));
    }

    #[test]
    fn the_copy_kept_aside_goes_when_a_new_store_would_not_fit_beside_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let seed = tmp.path().join("seed");
        fs::create_dir_all(&seed).expect("mkdir");
        let data = tmp.path().join("data");
        fs::create_dir_all(data.join("image/overlay2")).expect("mkdir");
        let aside = move_aside(&data).expect("moved aside");
        // Room enough (no footprint recorded, or a small one): the copy stays.
        assert!(!make_room(&seed, &data, &aside).expect("room"));
        fs::write(seed.join(FOOTPRINT_FILE), "4096").expect("write");
        assert!(!make_room(&seed, &data, &aside).expect("room"));
        assert!(aside.join("image/overlay2").is_dir(), "kept for a look");
        // A store no disk here has room for: the copy goes.
        fs::write(seed.join(FOOTPRINT_FILE), (u64::MAX / 2).to_string()).expect("write");
        assert!(make_room(&seed, &data, &aside).expect("removed"));
        assert!(!aside.exists());
    }

    #[test]
    fn a_failed_seed_gives_its_room_back_and_touches_nothing_else() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        for dir in [
            "overlay2.seeding/abc/diff",
            "image.seeding/overlay2",
            "volumes/v",
        ] {
            fs::create_dir_all(data.join(dir)).expect("mkdir");
        }
        discard_partial(&data).expect("discarded");
        for part in PARTS {
            assert!(!partial(&data, part).exists(), "{part}");
        }
        assert!(
            data.join("volumes/v").is_dir(),
            "the engine's own data stays"
        );
        discard_partial(&data).expect("nothing left to discard is no error");
    }

    #[test]
    fn a_seed_cut_short_is_done_again_not_trusted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let seed = tmp.path().join("seed");
        fs::create_dir_all(seed.join("image/overlay2/imagedb")).expect("mkdir");
        fs::write(seed.join("image/overlay2/repositories.json"), "{}").expect("write");
        fs::create_dir_all(seed.join("overlay2/abc/diff")).expect("mkdir");
        fs::write(seed.join("overlay2/abc/diff/file"), "whole").expect("write");
        // Each point a power cut can stop a seed at: part of a copy, the store's layers
        // put in place but not its index, both copies made but neither renamed.
        let cuts: [&[&str]; 3] = [
            &["overlay2.seeding/abc/diff"],
            &["overlay2/abc/diff", "image.seeding/overlay2"],
            &["overlay2.seeding/abc/diff", "image.seeding/overlay2"],
        ];
        for (i, dirs) in cuts.iter().enumerate() {
            let data = tmp.path().join(format!("data{i}"));
            for dir in *dirs {
                fs::create_dir_all(data.join(dir)).expect("mkdir");
                fs::write(data.join(dir).join("file"), "half").expect("write");
            }
            assert!(
                install(&seed, &data).expect("seed again").is_some(),
                "cut {i}"
            );
            assert_eq!(
                fs::read_to_string(data.join("overlay2/abc/diff/file")).expect("layer"),
                "whole",
                "cut {i}: the half copy is gone"
            );
            assert!(data.join("image/overlay2/repositories.json").is_file());
            assert!(!data.join("image/overlay2/file").exists(), "cut {i}");
            for part in PARTS {
                assert!(!partial(&data, part).exists(), "cut {i}: {part}");
            }
        }
        // A store that dockerd made or a seed finished is never touched.
        let made = tmp.path().join("made");
        fs::create_dir_all(made.join("image")).expect("mkdir");
        fs::create_dir_all(made.join("overlay2/mine")).expect("mkdir");
        assert_eq!(install(&seed, &made).expect("left alone"), None);
        assert!(made.join("overlay2/mine").is_dir());
    }
}
