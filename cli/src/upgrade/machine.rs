//! The machine an upgrade works on: which slot booted (`corral.slot=` on the kernel
//! command line), the disk it booted from and that disk's ESP and slot partitions, the
//! running release (the host's os-release), and the ESP mounted for a moment to read or
//! change the boot state. The console runs in the host's PID namespace, so the host's
//! files are under `/proc/1/root`.

use super::UpgradeError;
use crate::install::host::{Disk, Host};
pub use corral_disk::bootenv::booted_slot;
use corral_disk::bootenv::{BootEnv, Refusal, Slot};
use corral_disk::layout::{self, EFI};
use std::path::{Path, PathBuf};

/// The host's root, seen from the console.
pub const HOST_ROOT: &str = "/proc/1/root";
/// The root metadata the image trusts, in the host's root.
pub const TRUSTED_ROOT: &str = "usr/share/corral/update/root.json";
/// The state partition's upgrade folder: the trusted metadata, downloads, the record.
pub const STATE_DIR: &str = "/var/lib/corral/upgrade";
/// Where the ESP and the slot are mounted while they are written.
pub const SCRATCH: &str = "/run/corral/upgrade";

/// The disk a Corral machine booted from and its partitions.
#[derive(Debug, Clone)]
pub struct BootDisk {
    pub disk: Disk,
    pub esp: PathBuf,
    pub slot_a: PathBuf,
    pub slot_b: PathBuf,
}

impl BootDisk {
    pub fn slot(&self, slot: Slot) -> &Path {
        match slot {
            Slot::A => &self.slot_a,
            Slot::B => &self.slot_b,
        }
    }
}

/// Finds the disk with a `CORRAL_EFI` partition at the layout's place; with several,
/// the one that holds the mounted state partition (`state_dev`).
pub fn boot_disk(host: &dyn Host, state_dev: Option<(u32, u32)>) -> Result<BootDisk, UpgradeError> {
    let disks = host
        .disks()
        .map_err(|e| UpgradeError::System(format!("listing the disks: {e}")))?;
    let esp_number = layout::number(&EFI);
    let mut found = Vec::new();
    for esp in host.labelled(EFI.name) {
        let Ok(Some(dev)) = host.device_number(&esp) else {
            continue;
        };
        for d in &disks {
            if d.partitions
                .iter()
                .any(|p| p.dev == dev && p.number == esp_number)
            {
                found.push(d.clone());
            }
        }
    }
    let disk = match found.len() {
        0 => {
            return Err(UpgradeError::User(
                "no Corral boot disk (no CORRAL_EFI partition): a machine booted from the ISO \
                 has no boot slots; install Corral to a disk first (corral install -d DEVICE)"
                    .into(),
            ))
        }
        1 => found.remove(0),
        _ => match found.iter().find(|d| state_dev.is_some_and(|s| d.holds(s))) {
            Some(d) => d.clone(),
            None => {
                return Err(UpgradeError::User(format!(
                    "several disks carry Corral ({}) and none holds the mounted state partition; \
                     detach the ones that are not this machine's",
                    found
                        .iter()
                        .map(|d| d.node.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        },
    };
    let node = |slot: &layout::Slot| {
        let n = layout::number(slot);
        disk.partitions
            .iter()
            .find(|p| p.number == n)
            .map(|p| p.node.clone())
            .ok_or_else(|| {
                UpgradeError::System(format!(
                    "{} has no partition {n} ({}); it is not in Corral's layout",
                    disk.node.display(),
                    slot.name
                ))
            })
    };
    Ok(BootDisk {
        esp: node(&EFI)?,
        slot_a: node(&layout::SLOT_A)?,
        slot_b: node(&layout::SLOT_B)?,
        disk,
    })
}

/// The device the state partition is mounted from, as the host sees it.
pub fn state_device() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/1/mountinfo").ok()?;
    corral_host::mountinfo::state_device(&text)
}

/// Runs `f` with the ESP mounted at a scratch folder, unmounting after.
pub fn with_esp<T>(
    host: &dyn Host,
    esp: &Path,
    f: impl FnOnce(&Path) -> Result<T, UpgradeError>,
) -> Result<T, UpgradeError> {
    let dir = Path::new(SCRATCH).join("esp");
    std::fs::create_dir_all(&dir)
        .map_err(|e| UpgradeError::System(format!("making {}: {e}", dir.display())))?;
    host.mount(esp, &dir, "vfat", false)
        .map_err(|e| UpgradeError::System(format!("mounting the ESP {}: {e}", esp.display())))?;
    let result = f(&dir);
    host.sync();
    if let Err(e) = host.unmount(&dir) {
        log::warn!("unmounting {}: {e}", dir.display());
    }
    result
}

/// Changes the boot state on the ESP: `f` gets the state read now and returns the next
/// one (or refuses, the user's error), which is written in place. Returns what it wrote.
pub fn change_env(
    host: &dyn Host,
    esp: &Path,
    f: impl FnOnce(&BootEnv) -> Result<BootEnv, Refusal>,
) -> Result<BootEnv, UpgradeError> {
    with_esp(host, esp, |dir| {
        let next = f(&read_env(dir)?).map_err(|r| UpgradeError::User(r.to_string()))?;
        corral_update::bootstate::write(dir, &next)?;
        Ok(next)
    })
}

/// Reads the boot state from a mounted ESP.
pub fn read_env(esp: &Path) -> Result<BootEnv, UpgradeError> {
    let (env, readable) = corral_update::bootstate::read(esp)?;
    if !readable {
        log::warn!("the boot state on the ESP was not readable; GRUB boots slot A with it");
    }
    Ok(env)
}
