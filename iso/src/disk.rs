//! `corral.img`: the raw disk image. What goes where is corral-disk's plan
//! ([`corral_disk::plan`]); this module is the plan's writer for an image file, without
//! root, loop devices or mounting: the table and the raw writes through the file, the
//! filesystems made in place (`mkfs.vfat --offset`, `mkfs.ext4 -E offset=`), files put
//! in with mtools and `mkfs.ext4 -d`. It also makes the boot kit (GRUB's images, with
//! grub-mkimage from the suite's packages), build-only code that the host CLI never
//! links: `corral install` writes the same plan onto a device.
//!
//! GRUB, BIOS and UEFI alike, reads `/grub/grub.cfg` and `/grub/grubenv` from the EFI
//! system partition of the disk it started from, picks a boot slot from the environment
//! and loads the kernel and initrd from that slot's partition. docs/disks.md has the
//! slot and boot-counter rules this configuration implements.

use crate::{run, IsoError, Result, Tools};
use corral_disk::bootenv::BootEnv;
use corral_disk::grub::{grub_disk_cfg, slot_env, GRUB_DIR};
use corral_disk::layout::{self, EFI, IMAGE_MIB, MIB};
use corral_disk::plan::{self, Contents, FsKind, Plan, Source, BLANK_BYTES};
use corral_disk::{Guid, Table};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

pub use corral_disk::kit::{BootKit, KIT_DIR};

const GRUB_PC_DIR: (&str, &str) = ("/usr/lib/grub/i386-pc", "grub-pc-bin");

/// Modules in both GRUB images: GPT, the ESP's FAT, the slots' ext4, the menu, the
/// environment block, the serial console and Linux.
const GRUB_DISK_MODULES: &[&str] = &[
    "part_gpt",
    "fat",
    "ext2",
    "normal",
    "configfile",
    "linux",
    "loadenv",
    "regexp",
    "test",
    "echo",
    "serial",
    "terminal",
    "search",
];

/// What goes into the disk image.
pub struct DiskInputs<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// The root image, beside the initrd in slot A (PID 1 reads it from there).
    pub root: &'a Path,
    /// The kernel command line.
    pub cmdline: &'a str,
    /// Seeds the image's GUIDs and filesystem IDs, so the same inputs give the same
    /// image (the build passes a digest of kernel and initrd).
    pub seed: [u8; 16],
    /// A scratch directory, emptied first.
    pub work: &'a Path,
    pub output: &'a Path,
    /// Where GRUB and mke2fs come from.
    pub tools: &'a Tools,
}

/// The n-th GUID derived from the seed.
fn derived(seed: [u8; 16], n: u8) -> Guid {
    let mut bytes = seed;
    bytes[15] ^= n;
    bytes[0] = bytes[0].wrapping_add(n.wrapping_mul(97));
    Guid::from_random(bytes)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> IsoError + '_ {
    move |source| IsoError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn write_at(image: &Path, offset: u64, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(io(image))?;
    f.seek(SeekFrom::Start(offset)).map_err(io(image))?;
    f.write_all(bytes).map_err(io(image))
}

/// GRUB's core image for BIOS boots: modules built in, the prefix on partition 2 of the
/// drive the BIOS booted.
fn grub_pc_core(out: &Path, tools: &Tools) -> Result<()> {
    let modules = tools.file(GRUB_PC_DIR.0, GRUB_PC_DIR.1)?;
    let prefix = format!("(,gpt{})/{GRUB_DIR}", layout::number(&EFI));
    run(tools
        .command("/usr/bin/grub-mkimage", "grub-common")?
        .arg("-d")
        .arg(&modules)
        .args(["-O", "i386-pc", "-p", &prefix, "-o"])
        .arg(out)
        .arg("biosdisk")
        .args(GRUB_DISK_MODULES))
}

/// GRUB for UEFI: the prefix without a device is the partition it was loaded from.
fn grub_efi_disk(out: &Path, tools: &Tools) -> Result<()> {
    let modules = tools.file(crate::GRUB_EFI_DIR.0, crate::GRUB_EFI_DIR.1)?;
    run(tools
        .command("/usr/bin/grub-mkimage", "grub-common")?
        .arg("-d")
        .arg(&modules)
        .args(["-O", "x86_64-efi", "-p", &format!("/{GRUB_DIR}"), "-o"])
        .arg(out)
        .args(GRUB_DISK_MODULES)
        .args(["efi_gop", "all_video"]))
}

/// Makes the boot kit in `dir` (created) for a disk whose kernel command line is
/// `cmdline`.
pub fn boot_kit(dir: &Path, cmdline: &str, tools: &Tools) -> Result<BootKit> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let kit = BootKit::in_dir(dir);
    grub_pc_core(&kit.core_img, tools)?;
    grub_efi_disk(&kit.efi, tools)?;
    let boot_img = tools.file(&format!("{}/boot.img", GRUB_PC_DIR.0), GRUB_PC_DIR.1)?;
    fs::copy(&boot_img, &kit.boot_img).map_err(io(&boot_img))?;
    fs::write(&kit.grub_cfg, grub_disk_cfg(cmdline)).map_err(io(&kit.grub_cfg))?;
    fs::write(&kit.grubenv, BootEnv::default().render()).map_err(io(&kit.grubenv))?;
    let slot_env = slot_env(cmdline).unwrap_or_default();
    fs::write(&kit.slot_env, slot_env).map_err(io(&kit.slot_env))?;
    Ok(kit)
}

/// Makes the raw disk image: table, GRUB for both firmwares, slot A filled, slot B
/// empty, an empty state filesystem. Returns the table it wrote.
pub fn build_disk(inputs: &DiskInputs) -> Result<Table> {
    let work = inputs.work;
    if work.exists() {
        fs::remove_dir_all(work).map_err(io(work))?;
    }
    fs::create_dir_all(work).map_err(io(work))?;
    let kit = boot_kit(&work.join("kit"), inputs.cmdline, inputs.tools)?;
    let image = inputs.output;
    let _ = fs::remove_file(image);
    let file = File::create(image).map_err(io(image))?;
    file.set_len(IMAGE_MIB * MIB).map_err(io(image))?;
    drop(file);

    let mut n = 0u8;
    let table = layout::table(IMAGE_MIB * MIB, || {
        n += 1;
        derived(inputs.seed, n)
    })?;
    let (boot_img, core_img) = kit.boot_code()?;
    let plan = plan::plan(
        table,
        &Contents {
            kit: &kit,
            boot_img: &boot_img,
            core_img: &core_img,
            kernel: inputs.kernel,
            initrd: inputs.initrd,
            root: inputs.root,
            cloud_config: None,
        },
    )?;
    write_plan(&plan, image, inputs)?;
    Ok(plan.table)
}

/// Carries out `plan` on the image file: the table, the raw writes, the blank
/// partitions, then each filesystem made in place and filled.
fn write_plan(plan: &Plan, image: &Path, inputs: &DiskInputs) -> Result<()> {
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(io(image))?;
    plan.table.write(&mut disk)?;
    drop(disk);
    for raw in &plan.raw {
        write_at(image, raw.offset, &raw.bytes)?;
    }
    for &number in &plan.blank {
        let Some(part) = plan.partition(number) else {
            continue;
        };
        let zeros = vec![0u8; part.bytes().min(BLANK_BYTES) as usize];
        write_at(image, part.offset(), &zeros)?;
    }
    for fs in &plan.filesystems {
        let Some(part) = plan.partition(fs.number) else {
            continue;
        };
        // Each filesystem's files gathered in a folder first: mke2fs -d and mcopy read
        // files, and a file from bytes has none.
        let staged = inputs.work.join(format!("part-{}", fs.number));
        stage(&staged, &fs.files)?;
        match fs.kind {
            FsKind::Fat16 => fat_in_place(image, part, fs.label, inputs.seed, &staged)?,
            FsKind::Ext4 => mkfs_ext4(
                inputs.tools,
                image,
                part,
                fs.label,
                // Partition 3 (slot A) keeps the id it had before the plan: 101.
                derived(inputs.seed, 98 + fs.number as u8),
                (!fs.files.is_empty()).then_some(staged.as_path()),
            )?,
        }
    }
    Ok(())
}

/// Puts the plan's files for one filesystem under `dir`, private ones 0600 in 0700
/// folders.
fn stage(dir: &Path, files: &[plan::FileEntry]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).map_err(io(dir))?;
    for f in files {
        let to = dir.join(&f.path);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
            if f.private {
                fs::set_permissions(parent, fs::Permissions::from_mode(0o700))
                    .map_err(io(parent))?;
            }
        }
        match &f.source {
            Source::File(from) => fs::copy(from, &to).map(drop).map_err(io(from))?,
            Source::Bytes(bytes) => fs::write(&to, bytes).map_err(io(&to))?,
        }
        if f.private {
            fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).map_err(io(&to))?;
        }
    }
    Ok(())
}

/// A FAT16 filesystem in place in a partition of the image, its volume id from the
/// seed, filled with the folders and files under `staged` (mtools).
fn fat_in_place(
    image: &Path,
    part: &corral_disk::Partition,
    label: &str,
    seed: [u8; 16],
    staged: &Path,
) -> Result<()> {
    let volume_id = format!(
        "{:02x}{:02x}{:02x}{:02x}",
        seed[0], seed[1], seed[2], seed[3]
    );
    run(Command::new("mkfs.vfat")
        .arg(format!("--offset={}", part.first))
        // FAT16: FAT32 wants more clusters than 31 MiB has.
        .args(["-F", "16", "-n", label, "-i", &volume_id])
        .arg(image)
        .arg((part.bytes() / 1024).to_string()))?;
    let fat = format!("{}@@{}", image.display(), part.offset());
    // mcopy -s copies the staged tree, folders included, into the root.
    let mut entries: Vec<_> = fs::read_dir(staged)
        .map_err(io(staged))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    if entries.is_empty() {
        return Ok(());
    }
    run(Command::new("mcopy")
        .args(["-s", "-i", &fat])
        .args(&entries)
        .arg("::/"))
}

/// An ext4 filesystem in place in a partition of the image, optionally filled from a
/// directory, with a fixed UUID, hash seed and time so that the image is reproducible.
fn mkfs_ext4(
    tools: &Tools,
    image: &Path,
    part: &corral_disk::Partition,
    label: &str,
    uuid: Guid,
    files: Option<&Path>,
) -> Result<()> {
    let uuid = uuid.to_string().to_lowercase();
    let mut cmd = tools.mke2fs()?;
    cmd.args(["-q", "-F", "-L", label, "-U", &uuid])
        .arg("-E")
        .arg(format!("offset={},hash_seed={uuid}", part.offset()))
        .env("E2FSPROGS_FAKE_TIME", "1700000000");
    if let Some(dir) = files {
        cmd.arg("-d").arg(dir);
    }
    cmd.arg(image).arg(format!("{}k", part.bytes() / 1024));
    run(&mut cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_guids_differ_and_repeat() {
        let seed = [3u8; 16];
        assert_ne!(derived(seed, 1), derived(seed, 2));
        assert_eq!(derived(seed, 1), derived(seed, 1));
    }
}
