//! # corral-iso
//!
//! Makes `dist/corral.iso` from kernel, initrd, root image (`/boot/root.squashfs`, which
//! PID 1 mounts from the ISO) and command line: isolinux for BIOS, GRUB
//! (standalone x86_64-efi image at `/EFI/BOOT/BOOTX64.EFI`, also as the El Torito EFI image)
//! for UEFI, hybrid so it also boots written to a disk. Two entries: `corral` and `debug`
//! (adds `corral.debug_shell=ttyS1`).
//!
//! Also `dist/corral.img` (`src/disk.rs`): the GPT raw disk image, corral-disk's plan
//! (`corral_disk::plan`) carried out on a file without root or loop devices: GRUB i386-pc core.img in the BIOS
//! boot partition and boot.img in the MBR, GRUB x86_64-efi at the ESP's removable path with
//! the slot-choosing `grub.cfg` and `grubenv`, slot A (kernel, initrd and root image; ext4
//! via `mke2fs -t ext4 -E offset= -d`),
//! an empty state filesystem. docs/disks.md.
//!
//! - **Owns:** bootloader configurations, the ISO's layout, the boot kit's GRUB images
//!   (grub-mkimage) and the disk image's writer.
//! - **Must not touch:** what is inside the initrd or root image.
//! - **Talks to:** the bootloader files and grub-mkstandalone, grub-mkimage and mke2fs of
//!   a `Tools` folder (`src/tools.rs`: Debian packages the build unpacked from the image's
//!   suite, run with that folder's own loader; the host's packages in this crate's tests);
//!   xorriso, mkfs.vfat and mtools from the host; corral-disk for the table and GRUB's
//!   sectors.

pub mod disk;
mod error;
mod tools;

pub use error::{IsoError, Result};
pub use tools::Tools;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files the ISO is made of (paths as installed), with the Debian package of each.
const ISOLINUX_BIN: (&str, &str) = ("/usr/lib/ISOLINUX/isolinux.bin", "isolinux");
const ISOHDPFX: (&str, &str) = ("/usr/lib/ISOLINUX/isohdpfx.bin", "isolinux");
const LDLINUX: (&str, &str) = (
    "/usr/lib/syslinux/modules/bios/ldlinux.c32",
    "syslinux-common",
);
pub(crate) const GRUB_EFI_DIR: (&str, &str) = ("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin");

/// The volume label; GRUB finds the ISO's files by it.
pub const LABEL: &str = "CORRAL";

/// GRUB modules the EFI image carries: enough to find the ISO (or a FAT/GPT disk), show
/// a menu on serial and VGA, and load a Linux kernel.
const GRUB_MODULES: &str = "part_gpt part_msdos fat iso9660 search search_label search_fs_file \
    normal linux configfile echo serial terminal test all_video gfxterm efi_gop ls cat";

/// What goes on the ISO.
pub struct IsoInputs<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// The root image, at `/boot/root.squashfs` (PID 1 reads it from the ISO).
    pub root: &'a Path,
    /// The kernel command line, without `initrd=`.
    pub cmdline: &'a str,
    /// A scratch directory, emptied first.
    pub work: &'a Path,
    pub output: &'a Path,
    /// Where the bootloaders come from.
    pub tools: &'a Tools,
}

pub use corral_disk::grub::DEBUG_OPTIONS;

/// isolinux's configuration. TIMEOUT is in tenths of a second.
pub fn isolinux_cfg(cmdline: &str) -> String {
    format!(
        "SERIAL 0 115200\n\
         DEFAULT corral\n\
         PROMPT 1\n\
         TIMEOUT 10\n\
         SAY Corral: Enter boots. 'debug' adds a root shell on ttyS1. Type a label and options (corral.*=...) to pass them.\n\
         LABEL corral\n  \
           KERNEL /boot/vmlinuz\n  \
           APPEND initrd=/boot/initrd {cmdline}\n\
         LABEL debug\n  \
           KERNEL /boot/vmlinuz\n  \
           APPEND initrd=/boot/initrd {cmdline} {DEBUG_OPTIONS}\n"
    )
}

/// GRUB's menu on the ISO.
pub fn grub_cfg(cmdline: &str) -> String {
    format!(
        "serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         set timeout=1\n\
         menuentry \"Corral\" {{\n  \
           linux /boot/vmlinuz {cmdline}\n  \
           initrd /boot/initrd\n\
         }}\n\
         menuentry \"Corral with a root shell on ttyS1 (debugging)\" --hotkey=d {{\n  \
           linux /boot/vmlinuz {cmdline} {DEBUG_OPTIONS}\n  \
           initrd /boot/initrd\n\
         }}\n"
    )
}

/// The configuration built into the EFI image: find the ISO by label, then read its menu.
pub fn grub_early_cfg() -> String {
    format!(
        "search --no-floppy --set=root --label {LABEL}\n\
         set prefix=($root)/boot/grub\n\
         configfile $prefix/grub.cfg\n"
    )
}

/// Runs a build tool to its end (through the project's one command runner).
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    corral_host::command::output(cmd)?;
    Ok(())
}

fn write(path: &Path, content: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| IsoError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    fs::write(path, content).map_err(|source| IsoError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let content = fs::read(from).map_err(|source| IsoError::Write {
        path: from.to_path_buf(),
        source,
    })?;
    write(to, &content)
}

/// Builds GRUB's standalone EFI binary with the early configuration inside.
pub fn grub_efi(work: &Path, tools: &Tools) -> Result<PathBuf> {
    let modules = tools.file(GRUB_EFI_DIR.0, GRUB_EFI_DIR.1)?;
    let early = work.join("grub-early.cfg");
    write(&early, grub_early_cfg().as_bytes())?;
    let out = work.join("BOOTX64.EFI");
    run(tools
        .command("/usr/bin/grub-mkstandalone", "grub-common")?
        .arg("--directory")
        .arg(&modules)
        .args(["-O", "x86_64-efi", "--locales=", "--themes=", "--fonts="])
        .arg(format!("--install-modules={GRUB_MODULES}"))
        .arg(format!("--modules={GRUB_MODULES}"))
        .arg("-o")
        .arg(&out)
        .arg(format!("boot/grub/grub.cfg={}", early.display())))?;
    Ok(out)
}

/// A FAT image holding /EFI/BOOT/BOOTX64.EFI: the El Torito EFI boot image.
fn efi_image(work: &Path, efi: &Path) -> Result<PathBuf> {
    let img = work.join("efiboot.img");
    let size = fs::metadata(efi).map(|m| m.len()).unwrap_or(0);
    // FAT overhead plus slack; mkfs.vfat counts in KiB.
    let kib = (size / 1024 + 512).max(1440);
    let _ = fs::remove_file(&img);
    run(Command::new("mkfs.vfat")
        .args(["-C", "-n", "CORRAL_EFI", "-i", "0c0a1100"])
        .arg(&img)
        .arg(kib.to_string()))?;
    run(Command::new("mmd")
        .arg("-i")
        .arg(&img)
        .args(["::/EFI", "::/EFI/BOOT"]))?;
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&img)
        .arg(efi)
        .arg("::/EFI/BOOT/BOOTX64.EFI"))?;
    Ok(img)
}

/// Makes the ISO.
pub fn build(inputs: &IsoInputs) -> Result<()> {
    let tools = inputs.tools;
    let isolinux = tools.file(ISOLINUX_BIN.0, ISOLINUX_BIN.1)?;
    let ldlinux = tools.file(LDLINUX.0, LDLINUX.1)?;
    let mbr = tools.file(ISOHDPFX.0, ISOHDPFX.1)?;
    let work = inputs.work;
    if work.exists() {
        fs::remove_dir_all(work).map_err(|source| IsoError::Write {
            path: work.to_path_buf(),
            source,
        })?;
    }
    let tree = work.join("tree");
    copy(inputs.kernel, &tree.join("boot/vmlinuz"))?;
    copy(inputs.initrd, &tree.join("boot/initrd"))?;
    copy(inputs.root, &tree.join("boot/root.squashfs"))?;
    copy(&isolinux, &tree.join("isolinux/isolinux.bin"))?;
    copy(&ldlinux, &tree.join("isolinux/ldlinux.c32"))?;
    write(
        &tree.join("isolinux/isolinux.cfg"),
        isolinux_cfg(inputs.cmdline).as_bytes(),
    )?;
    write(
        &tree.join("boot/grub/grub.cfg"),
        grub_cfg(inputs.cmdline).as_bytes(),
    )?;
    // What `corral install` writes onto a disk besides kernel and initrd.
    let kit = disk::boot_kit(&work.join("kit"), inputs.cmdline, tools)?;
    for (name, file) in disk::BootKit::FILES.iter().zip(kit.files()) {
        copy(file, &tree.join(disk::KIT_DIR).join(name))?;
    }
    let efi = grub_efi(work, tools)?;
    copy(&efi, &tree.join("EFI/BOOT/BOOTX64.EFI"))?;
    let img = efi_image(work, &efi)?;
    copy(&img, &tree.join("boot/efiboot.img"))?;
    run(Command::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-quiet",
            "-iso-level",
            "3",
            "-full-iso9660-filenames",
        ])
        .args(["-volid", LABEL, "-rational-rock", "-joliet"])
        .arg("-isohybrid-mbr")
        .arg(&mbr)
        .args([
            "-eltorito-boot",
            "isolinux/isolinux.bin",
            "-eltorito-catalog",
            "isolinux/boot.cat",
        ])
        .args(["-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"])
        .args([
            "-eltorito-alt-boot",
            "-e",
            "boot/efiboot.img",
            "-no-emul-boot",
        ])
        .arg("-isohybrid-gpt-basdat")
        .arg("-output")
        .arg(inputs.output)
        .arg(&tree)
        // Reproducible timestamps (xorriso honours SOURCE_DATE_EPOCH).
        .env("SOURCE_DATE_EPOCH", "1700000000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_menus_pass_the_same_command_line() {
        let cmdline = "console=tty0 console=ttyS0,115200 corral.debug_shell=ttyS1";
        assert!(isolinux_cfg(cmdline).contains(&format!("APPEND initrd=/boot/initrd {cmdline}")));
        assert!(grub_cfg(cmdline).contains(&format!("linux /boot/vmlinuz {cmdline}")));
    }

    #[test]
    fn both_menus_offer_the_debug_entry() {
        assert!(isolinux_cfg("c").contains(&format!(
            "LABEL debug\n  KERNEL /boot/vmlinuz\n  APPEND initrd=/boot/initrd c {DEBUG_OPTIONS}"
        )));
        assert!(grub_cfg("c").contains(&format!(
            "--hotkey=d {{\n  linux /boot/vmlinuz c {DEBUG_OPTIONS}"
        )));
    }

    #[test]
    fn grub_finds_the_iso_by_its_label() {
        assert!(grub_early_cfg().contains(&format!("--label {LABEL}")));
    }

    #[test]
    fn a_missing_host_file_names_its_package() {
        let err = Tools::host()
            .file("/nonexistent/isolinux.bin", "isolinux")
            .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "'/nonexistent/isolinux.bin' is missing (Debian package isolinux)"
        );
    }
}
