//! The boot kit: GRUB for a Corral disk and slot A's boot settings as six files, made by the build (grub-mkimage,
//! in corral-iso) and carried on the ISO in [`KIT_DIR`], from which `corral install`
//! writes a disk. [`crate::plan`] says where each file lands.

use std::path::{Path, PathBuf};

/// GRUB for a Corral disk, as files: what the disk image is made from, and what the ISO
/// carries (in [`KIT_DIR`]) for `corral install` to write onto a disk.
#[derive(Debug, Clone)]
pub struct BootKit {
    /// GRUB's i386-pc boot sector (the MBR's code).
    pub boot_img: PathBuf,
    /// GRUB's i386-pc core image, its block list not yet pointed at a partition.
    pub core_img: PathBuf,
    /// GRUB for UEFI, for the ESP's removable path.
    pub efi: PathBuf,
    /// The slot-choosing menu, for the ESP's `/grub/grub.cfg`.
    pub grub_cfg: PathBuf,
    /// The environment block a new disk starts with (`corral_slot=A`).
    pub grubenv: PathBuf,
    /// Slot A's own boot settings ([`crate::grub::SLOT_ENV`]): the kernel command line.
    pub slot_env: PathBuf,
}

/// Where the ISO keeps the boot kit.
pub const KIT_DIR: &str = "boot/install";

impl BootKit {
    /// The kit's file names, as in [`KIT_DIR`].
    pub const FILES: [&'static str; 6] = [
        "boot.img",
        "core.img",
        "BOOTX64.EFI",
        "grub.cfg",
        "grubenv",
        crate::grub::SLOT_ENV,
    ];

    /// The kit in a directory that holds [`BootKit::FILES`].
    pub fn in_dir(dir: &Path) -> BootKit {
        let [boot_img, core_img, efi, grub_cfg, grubenv, slot_env] =
            BootKit::FILES.map(|f| dir.join(f));
        BootKit {
            boot_img,
            core_img,
            efi,
            grub_cfg,
            grubenv,
            slot_env,
        }
    }

    /// Every file, in the order of [`BootKit::FILES`].
    pub fn files(&self) -> [&Path; 6] {
        [
            &self.boot_img,
            &self.core_img,
            &self.efi,
            &self.grub_cfg,
            &self.grubenv,
            &self.slot_env,
        ]
    }

    /// GRUB's i386-pc boot sector and core image, the two files the plan writes raw
    /// ([`crate::plan::Contents`]).
    pub fn boot_code(&self) -> Result<(Vec<u8>, Vec<u8>), crate::DiskError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| crate::DiskError::Io {
                what: format!("reading '{}'", p.display()),
                source,
            })
        };
        Ok((read(&self.boot_img)?, read(&self.core_img)?))
    }
}
