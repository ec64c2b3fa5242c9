//! Signed updates: the signing key and the root metadata images trust (before the root
//! image, which carries the root metadata), then, once the kernel and initrd are made,
//! the release published into the repository folder `dist/update/` and the update file
//! `dist/corral-<version>-x86_64.update` (corral-update's `publish`).
//!
//! The key is `CORRAL_SIGNING_KEY` (a PKCS#8 Ed25519, ECDSA P-256 or RSA key file) or a
//! development key made once at `dist/signing-key.pk8`, never inside an image. The root
//! metadata the image trusts is the repository's newest (`dist/update/metadata/N.root.json`);
//! it is kept while it trusts the key, so the same key gives the same image, and a key it
//! does not trust is refused (`corral-build rotate-root` moves the repository to it).

use super::{made, Build};
use crate::error::{BuildError, Result};
use crate::progress::Step;
use crate::stage::{fresh, Fingerprint};
use corral_update::publish::{ensure_key, publish, Expiry, Publication};
use corral_update::release::{ReleaseId, ARCH};
use corral_update::root::{ensure_root, newest, trusts};
use std::fs;
use std::path::PathBuf;

/// The environment variable naming the signing key.
pub const KEY_ENV: &str = "CORRAL_SIGNING_KEY";

/// Where the root metadata lives in the root image.
pub const ROOT_IN_IMAGE: &str = "usr/share/corral/update/root.json";

fn err(e: corral_update::UpdateError) -> BuildError {
    BuildError::Update {
        detail: e.to_string(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BuildError::Update {
            detail: format!("starting an async runtime: {e}"),
        })
}

impl Build<'_> {
    /// The signing key: `CORRAL_SIGNING_KEY`, the build's option, or the development
    /// key in the dist folder.
    pub(super) fn signing_key(&self) -> PathBuf {
        match &self.opts.signing_key {
            Some(k) if std::env::var_os(KEY_ENV).is_none_or(|k| k.is_empty()) => k.clone(),
            _ => default_key(&self.paths.dist),
        }
    }

    /// The repository folder.
    pub(super) fn repository(&self) -> PathBuf {
        self.paths.dist.join("update")
    }

    /// The root metadata the image trusts: the repository's newest (`N.root.json`, N
    /// past 1 once the root was rotated), or where the first one goes.
    pub(super) fn update_root(&self) -> PathBuf {
        let metadata = self.repository().join("metadata");
        newest(&metadata)
            .map(|(_, path)| path)
            .unwrap_or_else(|| metadata.join("1.root.json"))
    }

    pub(super) fn update_file(&self) -> PathBuf {
        self.paths
            .dist
            .join(format!("corral-{}-{ARCH}.update", self.opts.version))
    }
}

/// The key (made when there is none and none is named) and the root metadata.
pub(super) fn keys(b: &mut Build<'_>) -> Result<()> {
    let key = b.signing_key();
    let named = std::env::var_os(KEY_ENV).is_some_and(|k| !k.is_empty());
    if named && !key.exists() {
        return Err(BuildError::Update {
            detail: format!(
                "{KEY_ENV} names {}, which does not exist; unset it to sign with a development key in dist/",
                key.display()
            ),
        });
    }
    if ensure_key(&key).map_err(err)? {
        eprintln!(
            "  {:<28} made a development signing key: {} (keep it: machines built now trust only it)",
            "signing key",
            key.display()
        );
    }
    let root = b.update_root();
    let runtime = runtime()?;
    // A repository moves to another key only by a rotation; a new first root would
    // leave every machine built before unable to upgrade from it.
    if root.exists() && !runtime.block_on(trusts(&root, &key)).map_err(err)? {
        return Err(BuildError::Update {
            detail: format!(
                "{} trusts another key than {}: sign with the key it trusts ({KEY_ENV}), move the repository to this key with `make rotate-root NEW_KEY={}` (signed by the old key), or build into an empty folder for machines that trust this key",
                root.display(),
                key.display(),
                key.display()
            ),
        });
    }
    let made_root = runtime
        .block_on(ensure_root(
            &root,
            &key,
            jiff::Timestamp::now(),
            Expiry::default(),
        ))
        .map_err(err)?;
    if made_root {
        eprintln!("  {:<28} {}", "root metadata", root.display());
    }
    Ok(())
}

/// Publishes this build's kernel, initrd, root image and boot settings as a release.
pub(super) fn publish_step(b: &mut Build<'_>) -> Result<()> {
    let (vmlinuz, initrd, squashfs) = (b.vmlinuz(), b.initrd(), b.squashfs());
    let work = b.paths.work.join("update");
    fs::create_dir_all(&work).map_err(BuildError::write(&work))?;
    let boot_env = work.join(corral_disk::grub::SLOT_ENV);
    let cmdline = b.cmdline();
    let env = corral_disk::grub::slot_env(&cmdline).unwrap_or_default();
    fs::write(&boot_env, env).map_err(BuildError::write(&boot_env))?;
    let file = b.update_file();
    let root = b.update_root();
    let mut fp = Fingerprint::new("update");
    fp.text("version", &b.opts.version)
        .text("initrd", &b.initrd_fp)
        .text("root", &b.root_fp)
        .text("kernel", &b.resolved()?.kernel.sha256)
        .text("cmdline", &cmdline)
        .text("publish", include_str!("../../../update/src/publish.rs"))
        .text("release", include_str!("../../../update/src/release.rs"));
    fp.file(&root)?;
    let update_fp = fp.finish();
    if fresh(&file, &update_fp) && b.repository().join("metadata/timestamp.json").exists() {
        eprintln!("  {:<28} unchanged", "update");
        return Ok(());
    }
    let step = Step::start("signing the update", 0);
    let id = ReleaseId {
        version: b.opts.version.clone(),
        build_id: b.build_id.clone(),
        arch: ARCH.into(),
    };
    let parts = [
        ("vmlinuz", vmlinuz.as_path()),
        ("initrd", initrd.as_path()),
        ("root.squashfs", squashfs.as_path()),
        (corral_disk::grub::SLOT_ENV, boot_env.as_path()),
    ];
    let key = b.signing_key();
    let published = runtime()?
        .block_on(publish(&Publication {
            repo: &b.repository(),
            root: &root,
            key: &key,
            id: &id,
            parts: &parts,
            bundle: &file,
            now: jiff::Timestamp::now(),
            expiry: Expiry::default(),
        }))
        .map_err(err)?;
    eprintln!(
        "  {:<28} {} offers {}",
        "repository",
        b.repository().display(),
        published.versions.join(", ")
    );
    made(step, &file, &update_fp)
}

/// The key a folder's builds sign with: `CORRAL_SIGNING_KEY`, else the development key
/// in `dist`.
pub fn default_key(dist: &std::path::Path) -> PathBuf {
    match std::env::var_os(KEY_ENV) {
        Some(k) if !k.is_empty() => PathBuf::from(k),
        _ => dist.join("signing-key.pk8"),
    }
}

/// Moves the repository in `dist/update` to `new_key` (made when it does not exist), or
/// renews its root when `new_key` is the key it trusts: root N+1 signed by `old_key` and
/// `new_key`, the releases signed again (corral-update's `root::rotate`).
pub fn rotate_root(
    dist: &std::path::Path,
    old_key: &std::path::Path,
    new_key: &std::path::Path,
) -> Result<corral_update::root::Rotated> {
    if ensure_key(new_key).map_err(err)? {
        eprintln!("made a new signing key: {}", new_key.display());
    }
    runtime()?
        .block_on(corral_update::root::rotate(
            &dist.join("update"),
            old_key,
            new_key,
            jiff::Timestamp::now(),
            Expiry::default(),
        ))
        .map_err(err)
}
