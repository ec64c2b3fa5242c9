//! The boot medium: where stage one finds the root image. The self-contained initrd
//! (`dist/initrd-pxe`, for PXE and QEMU's `-kernel`) carries it as `/root.squashfs`. The
//! initrd the ISO and the disk image boot (`dist/initrd`) does not: the image stays on
//! the medium the machine booted from and is paged in from there, instead of being
//! unpacked into RAM by the kernel and kept there for the machine's whole life.
//!
//! The medium is found by its filesystem label, read from the devices themselves (there
//! is no udev): the booted slot's ext4 (`CORRAL_A` or `CORRAL_B`, named by
//! `corral.slot=`, which the disk's GRUB menu adds), else the ISO 9660 volume `CORRAL`
//! (a CD, or the ISO written to a disk or a USB stick). It is mounted read-only at
//! [`MEDIUM`] and stays mounted while the machine runs; /run moves into the new root, so
//! it is visible there.

use crate::error::{InitError, Result};
use corral_host::cmdline::BootOptions;
use corral_host::sys::{poll_devices, Sys};
use nix::mount::{MntFlags, MsFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The root image inside the self-contained initrd.
pub const ROOT_IMAGE: &str = "/root.squashfs";
/// Where the boot medium is mounted.
pub const MEDIUM: &str = "/run/corral/medium";
/// The ISO's volume label (the ISO builder's `LABEL`).
pub const ISO_LABEL: &str = "CORRAL";
/// How long stage one waits for the medium to appear: CD-ROMs behind SCSI, NVMe and USB
/// disks are probed asynchronously after their drivers load.
const WAIT: Duration = Duration::from_secs(30);
/// When the console hears that the boot waits for it.
const SAY_WAITING: Duration = Duration::from_secs(2);

/// Where the root image is expected: the filesystem's label and type, and the image's
/// path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub label: String,
    pub fstype: &'static str,
    pub image: &'static str,
}

/// The medium this boot reads the root image from: the booted slot, or the ISO.
pub fn expected(opts: &BootOptions) -> Expected {
    match opts.slot {
        Some(slot) => Expected {
            label: format!("CORRAL_{slot}"),
            fstype: "ext4",
            image: "root.squashfs",
        },
        None => Expected {
            label: ISO_LABEL.to_string(),
            fstype: "iso9660",
            image: "boot/root.squashfs",
        },
    }
}

/// The root image's path: the initrd's own, or the one on the medium after mounting it.
pub fn locate(sys: &dyn Sys, opts: &BootOptions) -> Result<PathBuf> {
    let inside = Path::new(ROOT_IMAGE);
    if sys.exists(inside) {
        return Ok(inside.to_path_buf());
    }
    let want = expected(opts);
    let devices = wait_for(sys, &want.label);
    if devices.is_empty() {
        return Err(InitError::NoMedium {
            label: want.label,
            why: format!("no device carries it after {}s", WAIT.as_secs()),
        });
    }
    let mount_point = Path::new(MEDIUM);
    sys.mkdir_all(mount_point)?;
    let mut problems = Vec::new();
    for device in devices {
        let node = device.to_string_lossy();
        if let Err(e) = sys.mount(
            Some(&node),
            mount_point,
            Some(want.fstype),
            MsFlags::MS_RDONLY,
            None,
        ) {
            problems.push(format!("{node}: {e}"));
            continue;
        }
        let image = mount_point.join(want.image);
        if sys.exists(&image) {
            log::info!(
                "root image: {} on {node} ({}), read from there",
                want.image,
                want.label
            );
            return Ok(image);
        }
        problems.push(format!("{node} has no {}", want.image));
        if let Err(e) = sys.umount(mount_point, MntFlags::empty()) {
            log::warn!("{e}");
        }
    }
    Err(InitError::NoMedium {
        label: want.label,
        why: problems.join("; "),
    })
}

/// The devices labelled `label`, polled until one shows or [`WAIT`] is over; a line on
/// the console once nothing has shown for [`SAY_WAITING`].
fn wait_for(sys: &dyn Sys, label: &str) -> Vec<PathBuf> {
    let found = poll_devices(sys, SAY_WAITING, || sys.find_labelled(label));
    if !found.is_empty() {
        return found;
    }
    log::info!(
        "waiting up to {}s for the boot medium {label}",
        WAIT.as_secs()
    );
    poll_devices(sys, WAIT - SAY_WAITING, || sys.find_labelled(label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_host::sys::fake::{Call, FakeSys};

    fn mounts(sys: &FakeSys) -> Vec<(String, String)> {
        sys.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mount {
                    source: Some(s),
                    fstype: Some(t),
                    flags,
                    ..
                } if flags.contains(MsFlags::MS_RDONLY) => Some((s, t)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_initrds_own_image_wins_and_nothing_is_mounted() {
        let sys = FakeSys::default()
            .with_file(ROOT_IMAGE, "")
            .with_label(ISO_LABEL, "/dev/sr0");
        let image = locate(&sys, &BootOptions::default()).expect("found");
        assert_eq!(image, Path::new(ROOT_IMAGE));
        assert!(mounts(&sys).is_empty());
    }

    #[test]
    fn a_slot_boot_reads_the_image_from_that_slots_ext4_read_only() {
        let sys = FakeSys::default()
            .with_label("CORRAL_A", "/dev/vda3")
            .with_label("CORRAL_B", "/dev/vda4")
            .with_file("/run/corral/medium/root.squashfs", "");
        let opts = BootOptions::parse("corral.slot=B");
        let image = locate(&sys, &opts).expect("found");
        assert_eq!(image, Path::new("/run/corral/medium/root.squashfs"));
        assert_eq!(mounts(&sys), [("/dev/vda4".into(), "ext4".into())]);
    }

    #[test]
    fn without_a_slot_the_iso_is_the_medium_and_the_first_that_mounts_is_used() {
        let sys = FakeSys::default()
            .with_label(ISO_LABEL, "/dev/sda")
            .with_label(ISO_LABEL, "/dev/sr0")
            .with_file("/run/corral/medium/boot/root.squashfs", "");
        let image = locate(&sys, &BootOptions::default()).expect("found");
        assert_eq!(image, Path::new("/run/corral/medium/boot/root.squashfs"));
        assert_eq!(mounts(&sys), [("/dev/sda".into(), "iso9660".into())]);
    }

    #[test]
    fn media_without_the_image_or_that_do_not_mount_are_each_named() {
        let sys = FakeSys::default()
            .with_label(ISO_LABEL, "/dev/sda")
            .with_label(ISO_LABEL, "/dev/sr0");
        let err = locate(&sys, &BootOptions::default()).expect_err("no image anywhere");
        let text = err.to_string();
        assert!(
            text.contains("/dev/sda has no boot/root.squashfs")
                && text.contains("/dev/sr0 has no boot/root.squashfs"),
            "{text}"
        );
        let unmounted = sys
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Umount(p) if p == Path::new(MEDIUM)))
            .count();
        assert_eq!(unmounted, 2, "each medium without the image is let go");
    }

    #[test]
    fn no_medium_is_an_error_that_names_the_label_and_the_fix() {
        let sys = FakeSys::default();
        let err = locate(&sys, &BootOptions::parse("corral.slot=A")).expect_err("none");
        let text = err.to_string();
        assert!(text.contains("CORRAL_A"), "{text}");
        assert!(text.contains("after 30s"), "{text}");
        assert!(text.contains("initrd-pxe"), "{text}");
    }
}
