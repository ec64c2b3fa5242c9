//! `corral install -d DEVICE [-c CLOUD_CONFIG] [-f] [--no-reboot]`: installs the Corral
//! this machine booted from the ISO onto a disk, in the disk image's layout
//! (docs/disks.md): GRUB for BIOS and UEFI, the kernel and initrd in slot A, an empty
//! slot B, and a state partition that holds the cloud-config as the machine's own
//! configuration (the layer `corral config set` edits).
//!
//! Everything that can be refused is refused before the first write: a cloud-config that
//! does not validate, no ISO to copy from, a device that is not a whole writable disk,
//! the disk holding the ISO, a disk in use, a disk too small, and a "no" to the question.

pub mod devices;
pub mod host;
pub mod write;

use corral_config::store::{Store, CONF_DIR};
use corral_config::userdata::{self, UserData, MAX_USER_DATA};
use corral_disk::kit::{BootKit, KIT_DIR};
use corral_disk::layout::{self, PLAN};
use corral_disk::plan::{self, Contents};
use corral_disk::{DiskError, Guid};
use host::Host;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why an install did not happen (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "no Corral ISO found (no volume labelled {}): corral install copies Corral from the \
         ISO this machine booted; boot the ISO and run it there",
        devices::SOURCE_LABEL
    )]
    NoSource,
    #[error("the Corral ISO on {node} lacks {missing}; it was built before corral install existed: use an ISO from `make dist`")]
    BadSource { node: PathBuf, missing: String },
    #[error(
        "{0} is not a disk; name a whole disk, such as -d /dev/vda (ls /sys/block lists them)"
    )]
    NotADisk(PathBuf),
    #[error("{path} is partition {number} of {disk}; Corral takes the whole disk: -d {disk}")]
    Partition {
        path: PathBuf,
        number: usize,
        disk: PathBuf,
    },
    #[error("{0} holds the Corral ISO this machine booted from; install to another disk")]
    SourceDisk(PathBuf),
    #[error("{0} is read-only")]
    ReadOnly(PathBuf),
    #[error("{path} is in use ({what}); unmount it first or install to another disk")]
    InUse { path: PathBuf, what: String },
    #[error("{path} has {size}-byte sectors; Corral's disk layout needs 512-byte sectors")]
    SectorSize { path: PathBuf, size: u64 },
    #[error("{path}: {source}")]
    Layout { path: PathBuf, source: DiskError },
    #[error("{path} is not a cloud-config Corral can keep:\n  {}", .errors.join("\n  "))]
    CloudConfig { path: PathBuf, errors: Vec<String> },
    #[error("nothing was written: the answer was not yes (-f installs without asking)")]
    Declined,
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Disk(DiskError),
}

impl InstallError {
    pub fn io(what: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        InstallError::Io {
            what,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Whether the user can fix it by asking differently (exit code 1), rather than the
    /// machine failing (exit code 2).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, InstallError::Io { .. } | InstallError::Disk(_))
    }
}

/// What was asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub device: PathBuf,
    pub cloud_config: Option<PathBuf>,
    /// Install without asking.
    pub force: bool,
    /// Reboot when done.
    pub reboot: bool,
    /// A scratch directory for mount points (created, removed when done).
    pub work: PathBuf,
}

/// What was installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub disk: PathBuf,
    pub source: PathBuf,
    pub state_bytes: u64,
    pub cloud_config: Option<PathBuf>,
}

/// Where the cloud-config goes, relative to the state filesystem: `corral config set`'s
/// file under [`CONF_DIR`], in the state directory PID 1 binds there.
pub fn cloud_config_on_state() -> PathBuf {
    let set_file = Store::new(CONF_DIR).set_path();
    corral_host::layout::PERSISTED
        .iter()
        .find_map(|(dir, at)| {
            let rest = set_file.strip_prefix(at).ok()?;
            Some(Path::new(dir).join(rest))
        })
        .unwrap_or(set_file)
}

/// Reads and checks the cloud-config to install: it must validate, and be a cloud-config
/// (a script or compose file has no place in the configuration layers).
pub fn read_cloud_config(path: &Path) -> Result<Vec<u8>, InstallError> {
    let fail = |errors| InstallError::CloudConfig {
        path: path.to_path_buf(),
        errors,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_USER_DATA as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(vec![format!("it cannot be read: {e}")]))?;
    let origin = path.display().to_string();
    let report = crate::validate::bytes_of(&origin, &bytes);
    if !report.errors.is_empty() {
        return Err(fail(report.errors));
    }
    let doc = corral_config::validate::as_user_data(&bytes).into_owned();
    match userdata::parse(&origin, &doc) {
        Ok(UserData::CloudConfig { .. }) => Ok(doc),
        Ok(_) => Err(fail(vec![
            "it is a script or compose file; -c takes a #cloud-config (put commands in runcmd)"
                .into(),
        ])),
        Err(e) => Err(fail(vec![e.to_string()])),
    }
}

/// Installs Corral as `req` asks. `confirm` gets the question before anything is
/// written and says whether to go on (not asked with `force`).
pub fn install(
    host: &dyn Host,
    req: &Request,
    confirm: &mut dyn FnMut(&str) -> std::io::Result<bool>,
) -> Result<Installed, InstallError> {
    let config = req
        .cloud_config
        .as_deref()
        .map(read_cloud_config)
        .transpose()?;
    let disks = devices::disks(host)?;
    let source = devices::find_source(host, &disks)?;
    let disk = devices::check_target(host, &disks, &req.device, &source)?;
    let guids: Vec<Guid> = (0..=PLAN.len())
        .map(|_| Guid::random())
        .collect::<Result<_, _>>()
        .map_err(InstallError::Disk)?;
    let mut guids = guids.into_iter();
    let table =
        layout::table(disk.bytes, || guids.next().unwrap_or_default()).map_err(|source| {
            InstallError::Layout {
                path: req.device.clone(),
                source,
            }
        })?;
    std::fs::create_dir_all(&req.work)
        .map_err(|source| InstallError::io("creating", &req.work, source))?;
    let result = write::mounted(host, &source.node, "iso9660", true, &req.work, |iso| {
        let kit = BootKit::in_dir(&iso.join(KIT_DIR));
        let kernel = iso.join("boot/vmlinuz");
        let initrd = iso.join("boot/initrd");
        let root = iso.join("boot/root.squashfs");
        let missing: Vec<String> = kit
            .files()
            .into_iter()
            .chain([kernel.as_path(), initrd.as_path(), root.as_path()])
            .filter(|p| !p.is_file())
            .map(|p| p.strip_prefix(iso).unwrap_or(p).display().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(InstallError::BadSource {
                node: source.node.clone(),
                missing: missing.join(", "),
            });
        }
        // The plan reads GRUB's boot code from the kit: a bad kit is refused here, before
        // the question and the first write.
        let (boot_img, core_img) = kit.boot_code().map_err(InstallError::Disk)?;
        let at = cloud_config_on_state();
        let plan = plan::plan(
            table.clone(),
            &Contents {
                kit: &kit,
                boot_img: &boot_img,
                core_img: &core_img,
                kernel: &kernel,
                initrd: &initrd,
                root: &root,
                cloud_config: config.as_deref().map(|c| (at.as_path(), c)),
            },
        )
        .map_err(|source| InstallError::Layout {
            path: req.device.clone(),
            source,
        })?;
        if !req.force {
            let question = format!(
                "This erases everything on {} ({}) and installs Corral from {}.\n\
                 Type yes to go on: ",
                disk.node.display(),
                devices::describe(&disk),
                source.node.display()
            );
            let yes = confirm(&question)
                .map_err(|source| InstallError::io("reading the answer from", "stdin", source))?;
            if !yes {
                return Err(InstallError::Declined);
            }
        }
        write::write(host, &disk, &plan, &req.work)
    });
    let _ = std::fs::remove_dir(&req.work);
    result?;
    let state = &table.partitions[layout::number(&layout::STATE) - 1];
    Ok(Installed {
        disk: disk.node.clone(),
        source: source.node.clone(),
        state_bytes: state.bytes(),
        cloud_config: req.cloud_config.clone(),
    })
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
