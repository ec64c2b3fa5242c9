//! The root metadata: the TUF file that names the keys a machine trusts, built into
//! every image. The build makes the first one (version 1, one key for every role) and
//! keeps it while it trusts the signing key; [`rotate`] signs the next version, which
//! moves the repository to another key or renews the root before it expires.
//!
//! A rotation is TUF's: root N+1 names the new key and is signed by the key root N
//! trusts and by the new one, and the repository's other roles are signed again with the
//! new key at once, so the folder stays valid as it is served. A machine that trusts
//! root N reads `N+1.root.json` from the repository (or update file) on its next
//! `corral os list|upgrade` and from then on accepts only what the new key signs.

use crate::error::{io, Result, UpdateError};
use crate::publish::Expiry;
use crate::publish::{key_source, later, next_version, open_editor, renew, sign_err, signer};
use aws_lc_rs::rand::SystemRandom;
use std::collections::HashMap;
use std::fs;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use tough::editor::signed::SignedRole;
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root, Signed};

const ROLES: [RoleType; 4] = [
    RoleType::Root,
    RoleType::Targets,
    RoleType::Snapshot,
    RoleType::Timestamp,
];

/// The newest root metadata in a repository's `metadata/` folder (`N.root.json` with
/// the largest N), with its version.
pub fn newest(metadata: &Path) -> Option<(u64, PathBuf)> {
    fs::read_dir(metadata)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let n = name.strip_suffix(".root.json")?.parse::<u64>().ok()?;
            Some((n, e.path()))
        })
        .max_by_key(|(n, _)| *n)
}

/// Whether `root` (a signed root.json) lists `key` for `roles`.
async fn lists(root: &Signed<Root>, key: &Path, roles: &[RoleType]) -> Result<bool> {
    let sign = signer(key).await?;
    let Some(id) = root.signed.key_id(sign.as_ref()) else {
        return Ok(false);
    };
    Ok(roles.iter().all(|r| {
        root.signed
            .roles
            .get(r)
            .is_some_and(|k| k.keyids.contains(&id))
    }))
}

fn parse(bytes: &[u8], path: &Path) -> Result<Signed<Root>> {
    serde_json::from_slice(bytes).map_err(|e| UpdateError::Verify {
        what: format!("reading the root metadata {}", path.display()),
        detail: e.to_string(),
    })
}

/// Whether the root metadata at `path` trusts `key` for every top-level role.
pub async fn trusts(path: &Path, key: &Path) -> Result<bool> {
    let bytes = fs::read(path).map_err(io("reading the root metadata", path))?;
    match serde_json::from_slice::<Signed<Root>>(&bytes) {
        Ok(root) => lists(&root, key, &ROLES).await,
        Err(_) => Ok(false),
    }
}

/// A root of `version` that gives every role to `key` alone (threshold 1).
async fn one_key_root(
    key: &Path,
    version: NonZeroU64,
    now: jiff::Timestamp,
    expiry: Expiry,
) -> Result<Root> {
    let tuf_key = signer(key).await?.tuf_key();
    let id = tuf_key
        .key_id()
        .map_err(|e| sign_err("the key's id")(e.to_string()))?;
    let roles = ROLES
        .into_iter()
        .map(|r| {
            let keys = RoleKeys {
                keyids: vec![id.clone()],
                threshold: NonZeroU64::MIN,
                _extra: HashMap::new(),
            };
            (r, keys)
        })
        .collect();
    Ok(Root {
        spec_version: "1.0.0".into(),
        consistent_snapshot: true,
        version,
        expires: later(now, expiry.root_days)?,
        keys: HashMap::from([(id, tuf_key)]),
        roles,
        _extra: HashMap::new(),
    })
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
    if path.exists() && trusts(path, key).await? {
        return Ok(false);
    }
    let root = one_key_root(key, NonZeroU64::MIN, now, expiry).await?;
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

/// What a rotation wrote.
#[derive(Debug)]
pub struct Rotated {
    /// The new root's version and file.
    pub version: u64,
    pub path: PathBuf,
    pub expires: jiff::Timestamp,
    /// Whether the repository's releases were signed again with the new key (false when
    /// the folder holds only root metadata so far).
    pub resigned: bool,
}

/// Signs root N+1 of the repository in `repo`, trusting `new_key` for every role,
/// signed by `old_key` (which root N must trust for the root role) and `new_key`; then
/// signs the repository's releases again with `new_key`. `new_key` may be `old_key`:
/// that renews the root's expiry. Nothing is written when `old_key` is not trusted.
pub async fn rotate(
    repo: &Path,
    old_key: &Path,
    new_key: &Path,
    now: jiff::Timestamp,
    expiry: Expiry,
) -> Result<Rotated> {
    let metadata = repo.join("metadata");
    let (n, current_path) = newest(&metadata).ok_or_else(|| {
        UpdateError::Refused(format!(
            "{} holds no root metadata (N.root.json); build once (make dist) to make the first",
            metadata.display()
        ))
    })?;
    let current_bytes =
        fs::read(&current_path).map_err(io("reading the root metadata", &current_path))?;
    let current = parse(&current_bytes, &current_path)?;
    if !lists(&current, old_key, &[RoleType::Root]).await? {
        return Err(UpdateError::Refused(format!(
            "{} does not trust the key {} to sign the root; give the key the repository is signed with now (CORRAL_SIGNING_KEY or --old-key)",
            current_path.display(),
            old_key.display()
        )));
    }
    let version = NonZeroU64::new(n.saturating_add(1)).unwrap_or(NonZeroU64::MIN);
    let root = one_key_root(new_key, version, now, expiry).await?;
    let expires = root.expires;
    let rng = SystemRandom::new();
    let by_new = SignedRole::new(
        root.clone(),
        &KeyHolder::Root(root.clone()),
        &[key_source(new_key)],
        &rng,
    )
    .await
    .map_err(|e| sign_err("signing the new root metadata with the new key")(e.to_string()))?;
    let by_old = SignedRole::new(
        root,
        &KeyHolder::Root(current.signed.clone()),
        &[key_source(old_key)],
        &rng,
    )
    .await
    .map_err(|e| sign_err("signing the new root metadata with the old key")(e.to_string()))?;
    let signed = by_new
        .add_old_signatures(by_old.signed().signatures.clone())
        .map_err(|e| sign_err("joining the root's signatures")(e.to_string()))?;
    let path = metadata.join(format!("{version}.root.json"));
    let staged = metadata.join(format!(".{version}.root.json.new"));
    crate::fsutil::write_atomic(&staged, signed.buffer())?;
    let resigned = resign(repo, &current_bytes, &staged, new_key, now, expiry).await;
    let resigned = match resigned {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_file(&staged);
            return Err(e);
        }
    };
    // The editor wrote N+1.root.json itself when it signed the releases again.
    if resigned {
        let _ = fs::remove_file(&staged);
    } else {
        crate::fsutil::commit(&staged, &path)?;
    }
    Ok(Rotated {
        version: version.get(),
        path,
        expires,
        resigned,
    })
}

/// Signs the releases in `repo` again under the root at `new_root`, with `key`. False
/// when the folder holds no releases yet.
async fn resign(
    repo: &Path,
    trusted: &[u8],
    new_root: &Path,
    key: &Path,
    now: jiff::Timestamp,
    expiry: Expiry,
) -> Result<bool> {
    let metadata = repo.join("metadata");
    if !metadata.join("timestamp.json").exists() {
        return Ok(false);
    }
    let (mut editor, previous) = open_editor(repo, trusted, new_root).await?;
    renew(&mut editor, next_version(now, previous), now, expiry)?;
    let signed = editor
        .sign(&[key_source(key)])
        .await
        .map_err(|e| sign_err("signing the repository with the new key")(e.to_string()))?;
    signed
        .write(&metadata)
        .await
        .map_err(|e| sign_err(format!("writing {}", metadata.display()))(e.to_string()))?;
    Ok(true)
}
