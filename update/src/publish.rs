//! The build's side: the signing key, the root metadata images trust, and publishing a
//! release into a TUF repository (a folder any web server or S3 bucket can serve) and
//! into one self-contained update file.
//!
//! The repository is TUF's layout with consistent snapshots, written by `tough`'s
//! editor: `metadata/1.root.json`, `metadata/timestamp.json`,
//! `metadata/N.snapshot.json`, `metadata/N.targets.json`, and each file as
//! `targets/<sha256>.<name>`. Publishing into a folder that already holds a repository
//! signed by the same root keeps its releases and adds the new one; metadata versions are
//! the publication's Unix time, so each publication supersedes the last and a client
//! that saw a newer one refuses an older (a replay).

use crate::error::{io, Result, UpdateError};
use crate::release::{stored_name, target_name, PartInfo, ReleaseId, CUSTOM_KEY};
use aws_lc_rs::rand::SystemRandom;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::num::NonZeroU64;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tough::editor::signed::SignedRole;
use tough::editor::RepositoryEditor;
use tough::key_source::{KeySource, LocalKeySource};
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root, Signed, Target};
use tough::sign::Sign;

/// How long each role's signature stays valid, in days. The timestamp is the short one:
/// a repository that is not published again within it stops being trusted (TUF's
/// defence against a mirror that keeps serving an old, vulnerable release).
#[derive(Debug, Clone, Copy)]
pub struct Expiry {
    pub root_days: i64,
    pub targets_days: i64,
    pub snapshot_days: i64,
    pub timestamp_days: i64,
}

impl Default for Expiry {
    fn default() -> Expiry {
        Expiry {
            root_days: 3 * 365,
            targets_days: 365,
            snapshot_days: 365,
            timestamp_days: 90,
        }
    }
}

fn sign_err(what: impl Into<String>) -> impl FnOnce(String) -> UpdateError {
    let what = what.into();
    move |detail| UpdateError::Sign { what, detail }
}

fn later(now: jiff::Timestamp, days: i64) -> Result<jiff::Timestamp> {
    now.checked_add(jiff::SignedDuration::from_hours(days * 24))
        .map_err(|e| sign_err("an expiry date")(e.to_string()))
}

/// Makes an Ed25519 signing key (PKCS#8, readable by its owner only) at `path` unless
/// one is there. True when it made one.
pub fn ensure_key(path: &Path) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let doc = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|e| sign_err("making a development key")(e.to_string()))?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io("making the directory", dir))?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io("writing the signing key", path))?;
    file.write_all(doc.as_ref())
        .and_then(|()| file.sync_all())
        .map_err(io("writing the signing key", path))?;
    Ok(true)
}

fn key_source(key: &Path) -> Box<dyn KeySource> {
    Box::new(LocalKeySource {
        path: key.to_path_buf(),
    })
}

async fn signer(key: &Path) -> Result<Box<dyn Sign>> {
    key_source(key)
        .as_sign()
        .await
        .map_err(|e| sign_err(format!("reading the key {}", key.display()))(e.to_string()))
}

/// Whether `root` (a signed root.json) trusts `key` for every top-level role.
async fn root_trusts(root: &[u8], key: &Path) -> Result<bool> {
    let Ok(root) = serde_json::from_slice::<Signed<Root>>(root) else {
        return Ok(false);
    };
    let sign = signer(key).await?;
    let Some(id) = root.signed.key_id(sign.as_ref()) else {
        return Ok(false);
    };
    Ok([
        RoleType::Root,
        RoleType::Targets,
        RoleType::Snapshot,
        RoleType::Timestamp,
    ]
    .iter()
    .all(|r| {
        root.signed
            .roles
            .get(r)
            .is_some_and(|k| k.keyids.contains(&id))
    }))
}

/// The root metadata at `path` if it trusts `key`; otherwise a new one (version 1, one
/// key for every role, threshold 1) written there. Reusing it keeps builds with the same
/// key giving the same image. True when it made a new one.
pub async fn ensure_root(
    path: &Path,
    key: &Path,
    now: jiff::Timestamp,
    expiry: Expiry,
) -> Result<bool> {
    if let Ok(existing) = fs::read(path) {
        if root_trusts(&existing, key).await? {
            return Ok(false);
        }
    }
    let sign = signer(key).await?;
    let tuf_key = sign.tuf_key();
    let id = tuf_key
        .key_id()
        .map_err(|e| sign_err("the key's id")(e.to_string()))?;
    let one = NonZeroU64::MIN;
    let roles = [
        RoleType::Root,
        RoleType::Targets,
        RoleType::Snapshot,
        RoleType::Timestamp,
    ]
    .into_iter()
    .map(|r| {
        (
            r,
            RoleKeys {
                keyids: vec![id.clone()],
                threshold: one,
                _extra: HashMap::new(),
            },
        )
    })
    .collect();
    let root = Root {
        spec_version: "1.0.0".into(),
        consistent_snapshot: true,
        version: one,
        expires: later(now, expiry.root_days)?,
        keys: HashMap::from([(id, tuf_key)]),
        roles,
        _extra: HashMap::new(),
    };
    let signed = SignedRole::new(
        root.clone(),
        &KeyHolder::Root(root),
        &[key_source(key)],
        &SystemRandom::new(),
    )
    .await
    .map_err(|e| sign_err("signing the root metadata")(e.to_string()))?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io("making the directory", dir))?;
    }
    crate::fsutil::write_atomic(path, signed.buffer())?;
    Ok(true)
}

/// A release to publish.
pub struct Publication<'a> {
    /// The repository folder (`metadata/`, `targets/`), made if missing.
    pub repo: &'a Path,
    /// The root metadata ([`ensure_root`]).
    pub root: &'a Path,
    pub key: &'a Path,
    pub id: &'a ReleaseId,
    /// Each of [`crate::release::PARTS`] and the file that holds it.
    pub parts: &'a [(&'a str, &'a Path)],
    /// The self-contained update file to write.
    pub bundle: &'a Path,
    pub now: jiff::Timestamp,
    pub expiry: Expiry,
}

/// What a publication wrote.
#[derive(Debug)]
pub struct Published {
    pub targets_version: u64,
    /// The versions the repository offers now.
    pub versions: Vec<String>,
}

async fn editor_for(p: &Publication<'_>) -> Result<RepositoryEditor> {
    let metadata = p.repo.join("metadata");
    let fresh = || async {
        RepositoryEditor::new(p.root)
            .await
            .map_err(|e| sign_err("reading the root metadata")(e.to_string()))
    };
    if !metadata.join("timestamp.json").exists() {
        return fresh().await;
    }
    let root = fs::read(p.root).map_err(io("reading the root metadata", p.root))?;
    let url = |dir: &Path| {
        url::Url::from_directory_path(dir)
            .map_err(|()| sign_err("a file URL")(dir.display().to_string()))
    };
    let scratch = tempfile_dir(p.repo)?;
    let loaded =
        tough::RepositoryLoader::new(&root, url(&metadata)?, url(&p.repo.join("targets"))?)
            .expiration_enforcement(tough::ExpirationEnforcement::Unsafe)
            .datastore(scratch.clone())
            .load()
            .await;
    let _ = fs::remove_dir_all(&scratch);
    match loaded {
        Ok(repo) => RepositoryEditor::from_repo(p.root, repo)
            .await
            .map_err(|e| sign_err("opening the repository")(e.to_string())),
        Err(e) => Err(sign_err(format!(
            "reading the repository in {} (signed by another key? publish into an empty folder, or sign with the key that made it)",
            p.repo.display()
        ))(e.to_string())),
    }
}

fn tempfile_dir(near: &Path) -> Result<PathBuf> {
    let dir = near.join(format!(".datastore-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(io("making a scratch directory", &dir))?;
    Ok(dir)
}

/// Publishes a release: adds its parts to the repository (replacing a release of the
/// same version), signs every role, puts the files in place, drops files no target
/// names any more, and writes the update file.
pub async fn publish(p: &Publication<'_>) -> Result<Published> {
    let metadata = p.repo.join("metadata");
    let targets_dir = p.repo.join("targets");
    for dir in [&metadata, &targets_dir] {
        fs::create_dir_all(dir).map_err(io("making the directory", dir.as_path()))?;
    }
    let mut editor = editor_for(p).await?;
    let mut files = Vec::new();
    for (part, path) in p.parts {
        let mut target = Target::from_path(path)
            .await
            .map_err(|e| sign_err(format!("hashing {}", path.display()))(e.to_string()))?;
        let info = PartInfo {
            release: p.id.clone(),
            part: part.to_string(),
        };
        let custom =
            serde_json::to_value(&info).map_err(|e| sign_err("a target")(e.to_string()))?;
        target.custom.insert(CUSTOM_KEY.into(), custom);
        let name = target_name(p.id, part);
        let stored = stored_name(&target.hashes.sha256, &name);
        files.push((stored, path.to_path_buf()));
        editor
            .add_target(name.as_str(), target)
            .map_err(|e| sign_err(format!("adding {name}"))(e.to_string()))?;
    }
    let version = NonZeroU64::new(p.now.as_second().max(1) as u64).unwrap_or(NonZeroU64::MIN);
    let targets_expire = later(p.now, p.expiry.targets_days)?;
    if let Err(e) = editor.targets_version(version) {
        return Err(sign_err("the targets role")(e.to_string()));
    }
    if let Err(e) = editor.targets_expires(targets_expire) {
        return Err(sign_err("the targets role")(e.to_string()));
    }
    editor
        .snapshot_version(version)
        .snapshot_expires(later(p.now, p.expiry.snapshot_days)?)
        .timestamp_version(version)
        .timestamp_expires(later(p.now, p.expiry.timestamp_days)?);
    let signed = editor
        .sign(&[key_source(p.key)])
        .await
        .map_err(|e| sign_err("signing the repository")(e.to_string()))?;
    signed
        .write(&metadata)
        .await
        .map_err(|e| sign_err(format!("writing {}", metadata.display()))(e.to_string()))?;
    // Copies, never hard links: the build writes its outputs again in place, which
    // would change a release already published under its hash.
    for (stored, from) in &files {
        let to = targets_dir.join(stored);
        let tmp = crate::fsutil::temporary(&to);
        fs::copy(from, &tmp)
            .and_then(|_| fs::File::open(&tmp)?.sync_all())
            .map_err(io("copying a target", &to))?;
        crate::fsutil::commit(&tmp, &to)?;
    }
    let targets = &signed_targets(&metadata, version)?;
    prune_targets(&targets_dir, targets)?;
    let bundle_files: Vec<String> = files.iter().map(|(s, _)| s.clone()).collect();
    crate::bundle::write(
        p.bundle,
        &metadata,
        version.get(),
        &targets_dir,
        &bundle_files,
    )?;
    let mut versions: Vec<String> = crate::release::releases(
        targets
            .iter()
            .map(|t| (t.0.as_str(), t.1.as_ref(), t.2, t.3.as_slice())),
    )
    .into_iter()
    .map(|r| r.id.version)
    .collect();
    versions.dedup();
    Ok(Published {
        targets_version: version.get(),
        versions,
    })
}

type TargetRow = (String, Option<serde_json::Value>, u64, Vec<u8>);

/// The targets the signed targets metadata of `version` lists.
fn signed_targets(metadata: &Path, version: NonZeroU64) -> Result<Vec<TargetRow>> {
    let path = metadata.join(format!("{version}.targets.json"));
    let bytes = fs::read(&path).map_err(io("reading the targets metadata", &path))?;
    let signed: Signed<tough::schema::Targets> = serde_json::from_slice(&bytes)
        .map_err(|e| sign_err("reading the targets metadata")(e.to_string()))?;
    Ok(signed
        .signed
        .targets
        .iter()
        .map(|(name, t)| {
            (
                name.raw().to_string(),
                t.custom.get(CUSTOM_KEY).cloned(),
                t.length,
                t.hashes.sha256.to_vec(),
            )
        })
        .collect())
}

/// Removes files in `targets/` that no target names.
fn prune_targets(dir: &Path, targets: &[TargetRow]) -> Result<()> {
    let keep: HashSet<String> = targets
        .iter()
        .map(|(name, _, _, sha)| stored_name(sha, name))
        .collect();
    for entry in fs::read_dir(dir).map_err(io("reading", dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !keep.contains(&name) {
            fs::remove_file(entry.path()).map_err(io("removing an old target", entry.path()))?;
        }
    }
    Ok(())
}
