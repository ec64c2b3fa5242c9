//! The build's side: the signing key and publishing a release into a TUF repository (a
//! folder any web server or S3 bucket can serve) and into one self-contained update file
//! (the root metadata images trust is [`crate::root`]'s).
//!
//! The repository is TUF's layout with consistent snapshots, written by `tough`'s
//! editor: `metadata/N.root.json` (crate::root), `metadata/timestamp.json`,
//! `metadata/N.snapshot.json`, `metadata/N.targets.json`, and each file as
//! `targets/<sha256>.<name>`. Publishing into a folder that already holds a repository
//! signed by the same root keeps its releases and adds the new one; metadata versions are
//! the publication's Unix time, so each publication supersedes the last and a client
//! that saw a newer one refuses an older (a replay).

use crate::error::{io, Result, UpdateError};
use crate::release::{stored_name, target_name, PartInfo, ReleaseId, CUSTOM_KEY};
use aws_lc_rs::rand::SystemRandom;
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::num::NonZeroU64;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tough::editor::RepositoryEditor;
use tough::key_source::{KeySource, LocalKeySource};
use tough::schema::{Signed, Target};
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

pub(crate) fn sign_err(what: impl Into<String>) -> impl FnOnce(String) -> UpdateError {
    let what = what.into();
    move |detail| UpdateError::Sign { what, detail }
}

pub(crate) fn later(now: jiff::Timestamp, days: i64) -> Result<jiff::Timestamp> {
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

pub(crate) fn key_source(key: &Path) -> Box<dyn KeySource> {
    Box::new(LocalKeySource {
        path: key.to_path_buf(),
    })
}

pub(crate) async fn signer(key: &Path) -> Result<Box<dyn Sign>> {
    key_source(key)
        .as_sign()
        .await
        .map_err(|e| sign_err(format!("reading the key {}", key.display()))(e.to_string()))
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

/// An editor for the repository folder `repo` that signs with the root metadata at
/// `root`: a bare one for a folder without a repository, else one holding the
/// repository's releases, read (signatures checked, expiry not: the publisher renews
/// it) against the root metadata `trusted`. Also the version the repository's timestamp
/// has (0 for none), which the next publication's versions must pass.
pub(crate) async fn open_editor(
    repo: &Path,
    trusted: &[u8],
    root: &Path,
) -> Result<(RepositoryEditor, u64)> {
    let metadata = repo.join("metadata");
    if !metadata.join("timestamp.json").exists() {
        let editor = RepositoryEditor::new(root)
            .await
            .map_err(|e| sign_err("reading the root metadata")(e.to_string()))?;
        return Ok((editor, 0));
    }
    // A folder named relative to the working directory (`--dist-dir target/...`)
    // becomes a file URL only once absolute.
    let url = |dir: &Path| {
        std::path::absolute(dir)
            .ok()
            .and_then(|abs| url::Url::from_directory_path(abs).ok())
            .ok_or_else(|| sign_err("a file URL")(dir.display().to_string()))
    };
    let scratch = tempfile_dir(repo)?;
    let loaded =
        tough::RepositoryLoader::new(&trusted, url(&metadata)?, url(&repo.join("targets"))?)
            .expiration_enforcement(tough::ExpirationEnforcement::Unsafe)
            .datastore(scratch.clone())
            .load()
            .await;
    let _ = fs::remove_dir_all(&scratch);
    match loaded {
        Ok(loaded) => {
            let previous = loaded.timestamp().signed.version.get();
            let current = loaded.root().signed.version.get();
            let editing = fs::read(root)
                .ok()
                .and_then(|b| serde_json::from_slice::<Signed<tough::schema::Root>>(&b).ok())
                .map_or(0, |r| r.signed.version.get());
            if editing < current {
                return Err(sign_err(format!(
                    "publishing into {}",
                    repo.display()
                ))(format!(
                    "its root metadata was rotated to version {current}, and {} is version {editing}; sign with the key {current}.root.json trusts and that root (corral-build signs with the newest root in dist/update/metadata)",
                    root.display()
                )));
            }
            let editor = RepositoryEditor::from_repo(root, loaded)
                .await
                .map_err(|e| sign_err("opening the repository")(e.to_string()))?;
            Ok((editor, previous))
        }
        Err(e) => Err(sign_err(format!(
            "reading the repository in {} (signed by another key? sign with the key that made it, rotate the root to the new key (corral-build rotate-root), or publish into an empty folder)",
            repo.display()
        ))(e.to_string())),
    }
}

/// The version a publication at `now` signs its roles with: the Unix time, so versions
/// grow with time, and always past the repository's `previous` one.
pub(crate) fn next_version(now: jiff::Timestamp, previous: u64) -> NonZeroU64 {
    let seconds = u64::try_from(now.as_second()).unwrap_or(0);
    NonZeroU64::new(seconds.max(previous.saturating_add(1))).unwrap_or(NonZeroU64::MIN)
}

/// Sets every role's version and expiry for a publication at `now`.
pub(crate) fn renew(
    editor: &mut RepositoryEditor,
    version: NonZeroU64,
    now: jiff::Timestamp,
    expiry: Expiry,
) -> Result<()> {
    let targets_expire = later(now, expiry.targets_days)?;
    let targets_err = |e: tough::error::Error| sign_err("the targets role")(e.to_string());
    editor.targets_version(version).map_err(targets_err)?;
    editor
        .targets_expires(targets_expire)
        .map_err(targets_err)?;
    editor
        .snapshot_version(version)
        .snapshot_expires(later(now, expiry.snapshot_days)?)
        .timestamp_version(version)
        .timestamp_expires(later(now, expiry.timestamp_days)?);
    Ok(())
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
    let trusted = fs::read(p.root).map_err(io("reading the root metadata", p.root))?;
    let (mut editor, previous) = open_editor(p.repo, &trusted, p.root).await?;
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
    let version = next_version(p.now, previous);
    renew(&mut editor, version, p.now, p.expiry)?;
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
