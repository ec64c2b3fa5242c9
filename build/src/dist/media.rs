//! The boot media: the bootloaders unpacked from the image's own suite, the ISO and the
//! raw disk image (corral-iso, from corral-disk's plan).

use super::{made, Build, Paths};
use crate::apt::{Apts, Deb};
use crate::error::{BuildError, Result};
use crate::progress::Step;
use crate::stage::{fresh, Fingerprint};
use crate::{deb, rootfs};
use std::fs;

/// Unpacks the bootloaders' packages (GRUB, isolinux, mke2fs) from the image's suite.
pub(super) fn boot_tools(b: &mut Build<'_>) -> Result<()> {
    let r = b.resolved()?;
    let boot_debs: String = r
        .boot
        .iter()
        .map(|d| format!("{} {}\n", d.name, d.sha256))
        .collect();
    let tools = unpack_boot_tools(b.paths, b.apts()?, &r.boot, &boot_debs)?;
    b.boot_debs = boot_debs;
    b.tools = Some(tools);
    Ok(())
}

/// Makes the ISO (isolinux for BIOS, GRUB for UEFI, the boot kit for `corral install`).
pub(super) fn iso(b: &mut Build<'_>) -> Result<()> {
    let paths = b.paths;
    let r = b.resolved()?;
    let tools = b.tools()?;
    let (iso, vmlinuz, initrd, squashfs) = (b.iso(), b.vmlinuz(), b.initrd(), b.squashfs());
    let cmdline = b.cmdline();
    let (boot_debs, initrd_fp) = (&b.boot_debs, &b.initrd_fp);
    let mut fp = Fingerprint::new("iso");
    fp.text("boot packages", boot_debs)
        .text("initrd", initrd_fp)
        .text("root", &b.root_fp)
        .text("kernel", &r.kernel.sha256)
        .text("cmdline", &cmdline)
        .text("iso", include_str!("../../../iso/src/lib.rs"))
        .text("kit", include_str!("../../../iso/src/disk.rs"))
        .text("kit files", include_str!("../../../disk/src/kit.rs"))
        .text("grub", include_str!("../../../disk/src/grub.rs"));
    let iso_fp = fp.finish();
    if fresh(&iso, &iso_fp) {
        eprintln!("  {:<28} unchanged", "ISO");
    } else {
        let step = Step::start("making the ISO", 0);
        corral_iso::build(&corral_iso::IsoInputs {
            kernel: &vmlinuz,
            initrd: &initrd,
            root: &squashfs,
            cmdline: &cmdline,
            work: &paths.work.join("iso"),
            output: &iso,
            tools,
        })?;
        made(step, &iso, &iso_fp)?;
    }
    Ok(())
}

/// Makes the raw disk image (BIOS and UEFI, slots A and B, state), for disks and EC2.
pub(super) fn disk_image(b: &mut Build<'_>) -> Result<()> {
    let paths = b.paths;
    let r = b.resolved()?;
    let tools = b.tools()?;
    let (img, vmlinuz, initrd, squashfs) = (b.disk_image(), b.vmlinuz(), b.initrd(), b.squashfs());
    let cmdline = b.cmdline();
    let (boot_debs, initrd_fp) = (&b.boot_debs, &b.initrd_fp);
    let mut fp = Fingerprint::new("disk");
    fp.text("boot packages", boot_debs)
        .text("initrd", initrd_fp)
        .text("root", &b.root_fp)
        .text("kernel", &r.kernel.sha256)
        .text("cmdline", &cmdline)
        .text("disk", include_str!("../../../iso/src/disk.rs"))
        .text("layout", include_str!("../../../disk/src/layout.rs"))
        .text("gpt", include_str!("../../../disk/src/gpt.rs"))
        .text("bios", include_str!("../../../disk/src/bios.rs"))
        .text("plan", include_str!("../../../disk/src/plan.rs"))
        .text("kit", include_str!("../../../disk/src/kit.rs"))
        .text("grub", include_str!("../../../disk/src/grub.rs"));
    let img_fp = fp.finish();
    if fresh(&img, &img_fp) {
        eprintln!("  {:<28} unchanged", "disk image");
    } else {
        let step = Step::start("making the disk image", 0);
        let mut seed = [0u8; 16];
        for (s, b) in seed
            .iter_mut()
            .zip(hex::decode(&img_fp).unwrap_or_default())
        {
            *s = b;
        }
        corral_iso::disk::build_disk(&corral_iso::disk::DiskInputs {
            kernel: &vmlinuz,
            initrd: &initrd,
            root: &squashfs,
            cmdline: &cmdline,
            seed,
            work: &paths.work.join("disk"),
            output: &img,
            tools,
        })?;
        made(step, &img, &img_fp)?;
    }
    Ok(())
}

/// The boot media's packages unpacked into one folder (`boot-tools` in the work
/// folder), remade when `listing` (their names and sha256s) changes, for
/// [`corral_iso::Tools`].
fn unpack_boot_tools(
    paths: &Paths,
    apts: &Apts,
    debs: &[Deb],
    listing: &str,
) -> Result<corral_iso::Tools> {
    let dir = paths.work.join("boot-tools");
    let stamp = paths.work.join("boot-tools.stamp");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(listing) {
        let step = Step::start("unpacking the bootloaders", debs.len() as u64);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(BuildError::write(&dir))?;
        }
        fs::create_dir_all(&dir).map_err(BuildError::write(&dir))?;
        for d in debs {
            step.set_detail(&d.name);
            let tree = deb::unpack(&paths.cache, d, &apts.path(d))?;
            rootfs::merge(&dir, &tree)?;
            step.inc();
        }
        fs::write(&stamp, listing).map_err(BuildError::write(&stamp))?;
        step.done(&format!("{} packages in {}", debs.len(), dir.display()));
    }
    Ok(corral_iso::Tools::unpacked(&dir)?)
}
