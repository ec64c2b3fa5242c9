//! The saved configuration under `/var/lib/corral/conf/` (root only), and the
//! configuration in force, merged from its layers.
//!
//! Files: `user-data` (the last good user-data, as fetched), `meta-data.json` (its
//! datasource's metadata), `user-data.rejected` and `user-data.error` (the last user-data
//! that failed to parse or validate, and why), `cloud-config.yml` (`corral config set`).
//! A rejected user-data never replaces a good one: the machine boots with the last good
//! configuration, or the built-in one, and ssh keys from the other sources still apply.

use crate::datasource::{Fetched, Metadata};
use crate::merge;
use crate::userdata::{self, UserData};
use crate::{cmdline, CloudConfig, ConfigError};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use yaml_serde::Value;

/// Where the saved configuration lives.
pub const CONF_DIR: &str = "/var/lib/corral/conf";
/// An OEM's configuration, shipped in the image (the layer under the user-data).
pub const OEM_FILE: &str = "/usr/share/corral/oem/cloud-config.yml";
/// The configuration in force, written by the manager at boot for the console and the
/// CLI (root only).
pub const EFFECTIVE: &str = "/run/corral/cloud-config.yml";
/// A `#!` user-data, left by the manager for the console to run (`corral runcmd`).
pub const USER_SCRIPT: &str = "/run/corral/user-data.script";

/// The files in [`CONF_DIR`].
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
}

/// What became of fetched user-data.
#[derive(Debug)]
pub enum Verdict {
    /// Saved; it is the user-data in force, as parsed (with warnings for keys Corral
    /// ignores).
    Accepted(UserData),
    /// Kept aside; the last good user-data stays in force.
    Rejected(ConfigError),
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    pub fn user_data_path(&self) -> PathBuf {
        self.dir.join("user-data")
    }
    pub fn rejected_path(&self) -> PathBuf {
        self.dir.join("user-data.rejected")
    }
    pub fn error_path(&self) -> PathBuf {
        self.dir.join("user-data.error")
    }
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join("meta-data.json")
    }
    /// `corral config set` writes here.
    pub fn set_path(&self) -> PathBuf {
        self.dir.join("cloud-config.yml")
    }

    /// Saves a datasource's answer: its metadata always, its user-data when it parses
    /// and validates (else beside it, with the error).
    pub fn save(&self, fetched: &Fetched) -> std::io::Result<Verdict> {
        let _lock = self.lock()?;
        let meta = serde_json::to_vec_pretty(&fetched.meta).map_err(std::io::Error::other)?;
        write_private(&self.meta_path(), &meta)?;
        let origin = format!("user-data from {}", fetched.source);
        match userdata::parse(&origin, &fetched.user_data) {
            Ok(parsed) => {
                write_private(&self.user_data_path(), &fetched.user_data)?;
                let _ = std::fs::remove_file(self.rejected_path());
                let _ = std::fs::remove_file(self.error_path());
                Ok(Verdict::Accepted(parsed))
            }
            Err(e) => {
                write_private(&self.rejected_path(), &fetched.user_data)?;
                write_private(&self.error_path(), format!("{e}\n").as_bytes())?;
                Ok(Verdict::Rejected(e))
            }
        }
    }

    /// Makes [`Store::dir`], root only.
    pub fn make_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
    }

    /// Holds the store's lock (an exclusive flock on `.lock` in it) until the guard is
    /// dropped, so two changes (two `corral config set` at once, or one beside the
    /// manager saving user-data) read and write one after the other, none lost.
    pub fn lock(&self) -> std::io::Result<nix::fcntl::Flock<std::fs::File>> {
        self.make_dir()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.dir.join(".lock"))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| std::io::Error::from(e))
    }

    /// The user-data in force (the last good one), parsed.
    pub fn user_data(&self) -> Result<Option<UserData>, ConfigError> {
        let path = self.user_data_path();
        match std::fs::read(&path) {
            Ok(bytes) => userdata::parse(&path.display().to_string(), &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ConfigError::Read(path, e)),
        }
    }

    /// The saved metadata (empty when there is none or it cannot be read).
    pub fn metadata(&self) -> Metadata {
        std::fs::read(self.meta_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The last rejected user-data's error, if the last fetch was rejected.
    pub fn rejection(&self) -> Option<String> {
        std::fs::read_to_string(self.error_path())
            .ok()
            .map(|s| s.trim().to_string())
    }
}

/// Writes `path` readable by root only, whole or not at all (a temporary file renamed;
/// when a step fails, a full disk say, the temporary file is removed and the old file
/// stays as it was).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the directory that holds it is on the disk.
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// A plain YAML file as a cloud-config layer (the `#cloud-config` line is optional in
/// the files Corral itself keeps).
pub fn read_layer(path: &Path) -> Result<Option<UserData>, ConfigError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::Read(path.to_path_buf(), e)),
    };
    parse_layer(&path.display().to_string(), &bytes).map(Some)
}

/// A layer's bytes (a file Corral keeps, or one on its way there), parsed; `origin`
/// names it in errors.
pub fn parse_layer(origin: &str, bytes: &[u8]) -> Result<UserData, ConfigError> {
    let text = String::from_utf8_lossy(bytes);
    let first = text.lines().next().unwrap_or_default();
    if first.starts_with("#cloud-config") || bytes.starts_with(&[0x1f, 0x8b]) {
        return userdata::parse(origin, bytes);
    }
    let mut with_header = b"#cloud-config\n".to_vec();
    with_header.extend_from_slice(bytes);
    // Line numbers in errors count the added line; take it back out.
    userdata::parse(origin, &with_header).map_err(|e| match e {
        ConfigError::Yaml { origin, at, detail } => ConfigError::Yaml {
            origin,
            at: crate::validate::shift_line(&at),
            detail,
        },
        other => other,
    })
}

/// The configuration in force and how it came about.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    pub config: CloudConfig,
    /// The merged document (what [`EFFECTIVE`] holds).
    pub value: Value,
    /// A `#!` user-data script, run once per boot in the console.
    pub script: Option<String>,
    /// A `#compose` user-data services file.
    pub compose: Option<String>,
    /// Layers or options left out, with why.
    pub errors: Vec<String>,
    /// Keys Corral ignores.
    pub warnings: Vec<String>,
}

/// Merges the layers, lowest first: OEM < saved user-data < datasource metadata (its
/// hostname only when none is set, its keys added) < `corral config set` < the kernel
/// command line. A layer that does not parse is left out and named in `errors`.
pub fn effective(store: &Store, oem: &Path, cmdline_text: &str) -> Effective {
    effective_with(store, oem, cmdline_text, read_layer(&store.set_path()))
}

/// [`effective`] with `set` in place of the saved `corral config set` layer: what the
/// configuration would be after a change, checked before the change is saved.
pub fn effective_with(
    store: &Store,
    oem: &Path,
    cmdline_text: &str,
    set: Result<Option<UserData>, ConfigError>,
) -> Effective {
    let mut out = Effective::default();
    let oem = take(read_layer(oem), &mut out);
    let user = take(store.user_data(), &mut out);
    let set = take(set, &mut out);
    let (good, option_errors) = cmdline::checked(cmdline_text);
    out.errors
        .extend(option_errors.iter().map(|e| e.to_string()));
    let meta = store.metadata();
    let below_set = merge::layers(oem.into_iter().chain(user));
    let with_meta = merge::with_metadata(below_set, None, &meta.public_keys);
    let upper = set.into_iter().chain([cmdline::document(&good)]);
    let mut merged = merge::layers(std::iter::once(with_meta).chain(upper));
    merged = merge::with_metadata(merged, meta.hostname.as_deref(), &[]);
    match yaml_serde::from_value::<CloudConfig>(merged.clone()) {
        Ok(config) => {
            out.config = config;
            out.value = merged;
        }
        Err(e) => {
            // Layers that each read well but not together: keep the command line's.
            out.errors.push(format!(
                "the merged configuration does not read ({e}); only the kernel command line's applies"
            ));
            out.value = cmdline::document(&good);
            out.config = yaml_serde::from_value(out.value.clone()).unwrap_or_default();
        }
    }
    out
}

/// One layer's document; its script or services file and its problems go to `out`.
fn take(layer: Result<Option<UserData>, ConfigError>, out: &mut Effective) -> Option<Value> {
    match layer {
        Ok(Some(UserData::CloudConfig {
            value, warnings, ..
        })) => {
            out.warnings.extend(warnings);
            Some(value)
        }
        Ok(Some(UserData::Script(s))) => {
            out.script = Some(s);
            None
        }
        Ok(Some(UserData::Compose(c))) => {
            out.compose = Some(c);
            None
        }
        Ok(Some(UserData::Empty)) | Ok(None) => None,
        Err(e) => {
            out.errors
                .push(format!("{e}; this layer is left out, the others apply"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn fetched(user_data: &str, meta: Metadata) -> Fetched {
        Fetched {
            source: "nocloud:/dev/sr1".into(),
            user_data: user_data.as_bytes().to_vec(),
            meta,
        }
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("user.yml");
        write_private(&path, b"old").expect("first write");
        // A directory where the temporary file goes: the write fails at its first step.
        std::fs::create_dir(dir.path().join("user.tmp")).expect("mkdir");
        assert!(write_private(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        std::fs::remove_dir(dir.path().join("user.tmp")).expect("rmdir");
        // The rename fails at the last step (a non-empty directory in the file's place):
        // the written temporary file is removed.
        let other = dir.path().join("other.yml");
        std::fs::create_dir_all(other.join("inside")).expect("mkdir");
        assert!(write_private(&other, b"new").is_err());
        assert!(
            !dir.path().join("other.tmp").exists(),
            "no temporary file left"
        );
    }

    #[test]
    fn good_user_data_is_saved_root_only_and_bad_is_kept_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().join("conf"));
        let meta = Metadata {
            hostname: Some("meta-host".into()),
            public_keys: vec!["ssh-ed25519 META".into()],
            ..Metadata::default()
        };
        let v = store
            .save(&fetched(
                "#cloud-config\nhostname: good\nphone_home: []\n",
                meta.clone(),
            ))
            .expect("save");
        assert!(
            matches!(&v, Verdict::Accepted(UserData::CloudConfig { warnings, .. }) if warnings.len() == 1),
            "{v:?}"
        );
        let mode = std::fs::metadata(store.user_data_path())
            .expect("stat")
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(&store.dir).expect("stat").mode();
        assert_eq!(dmode & 0o777, 0o700);
        // A bad one: rejected, the good one stays, the error is kept for `validate`.
        let v = store
            .save(&fetched("#cloud-config\nhostname: [oops\n", meta.clone()))
            .expect("save");
        let Verdict::Rejected(e) = v else {
            panic!("{v:?}")
        };
        assert!(e
            .to_string()
            .starts_with("user-data from nocloud:/dev/sr1: line 3 column 1"));
        let Some(UserData::CloudConfig { config, .. }) = store.user_data().expect("reads") else {
            panic!()
        };
        assert_eq!(config.hostname.as_deref(), Some("good"));
        assert!(store.rejection().expect("kept").contains("line 3 column 1"));
        assert_eq!(store.metadata(), meta);
        // The next good one clears the rejection.
        store
            .save(&fetched("#cloud-config\n", Metadata::default()))
            .expect("save");
        assert!(store.rejection().is_none() && !store.rejected_path().exists());
    }

    #[test]
    fn layers_merge_in_precedence_order_with_metadata_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().join("conf"));
        let oem = dir.path().join("oem.yml");
        std::fs::write(
            &oem,
            "corral:\n  sysctl: {a.b: 1}\n  modules: [oem]\nhostname: oem\n",
        )
        .expect("w");
        let meta = Metadata {
            hostname: Some("from-meta".into()),
            public_keys: vec!["META".into()],
            ..Metadata::default()
        };
        store
            .save(&fetched(
                "#cloud-config\nssh_authorized_keys: [USER]\ncorral:\n  modules: [user]\n",
                meta,
            ))
            .expect("save");
        std::fs::write(store.set_path(), "corral:\n  shutdown_timeout: 20\n").expect("w");
        let e = effective(
            &store,
            &oem,
            "quiet corral.shutdown_timeout=45 \"corral.ssh_authorized_keys=[CMD]\"",
        );
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        let c = &e.config;
        assert_eq!(
            c.hostname.as_deref(),
            Some("oem"),
            "metadata's only when unset"
        );
        assert_eq!(c.corral.modules[0].0, "user", "user-data over OEM");
        assert_eq!(c.corral.sysctl.len(), 1, "deep merge keeps OEM's sysctl");
        assert_eq!(
            c.corral.shutdown_timeout,
            Some(45),
            "cmdline over config set"
        );
        assert_eq!(c.authorized_keys(), ["USER", "META", "CMD"]);
        // Without a hostname anywhere, the metadata's applies.
        std::fs::remove_file(&oem).expect("rm");
        let e = effective(&store, &oem, "");
        assert_eq!(e.config.hostname.as_deref(), Some("from-meta"));
    }

    #[test]
    fn a_bad_layer_is_left_out_and_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().join("conf"));
        std::fs::create_dir_all(&store.dir).expect("mkdir");
        std::fs::write(store.set_path(), "hostname: ok\ncorral:\n  modules: 3\n").expect("w");
        let e = effective(
            &store,
            Path::new("/nonexistent"),
            "corral.shutdown_timeout=soon",
        );
        assert_eq!(e.errors.len(), 2, "{:?}", e.errors);
        assert!(
            e.errors[0].contains("cloud-config.yml: line 3 column 12: corral.modules"),
            "{}",
            e.errors[0]
        );
        assert!(e.errors[1].starts_with("kernel command line: corral.shutdown_timeout"));
        assert_eq!(e.config, CloudConfig::default());
    }

    #[test]
    fn script_and_compose_user_data_are_carried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path().join("conf"));
        store
            .save(&fetched("#!/bin/sh\necho hi\n", Metadata::default()))
            .expect("save");
        let e = effective(&store, Path::new("/nonexistent"), "");
        assert_eq!(e.script.as_deref(), Some("#!/bin/sh\necho hi\n"));
    }
}
