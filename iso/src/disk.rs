//! `corral.img`: the raw disk image, in the layout of [`corral_disk::layout`]. Made on
//! an image file without root, loop devices or mounting: the partition table and GRUB's
//! BIOS sectors written by corral-disk, the filesystems made in place (`mkfs.vfat
//! --offset`, `mkfs.ext4 -E offset=`), files put in with mtools and `mkfs.ext4 -d`.
//!
//! GRUB, BIOS and UEFI alike, reads `/grub/grub.cfg` and `/grub/grubenv` from the EFI
//! system partition of the disk it started from, picks a boot slot from the environment
//! and loads the kernel and initrd from that slot's partition. docs/disks.md has the
//! slot and boot-counter rules this configuration implements.

use crate::{run, IsoError, Result, Tools, DEBUG_OPTIONS};
use corral_disk::layout::{self, EFI, IMAGE_MIB, MIB, SLOT_A, SLOT_B, STATE};
use corral_disk::{bios, Guid, Table};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// GRUB's directory on the ESP, relative to the partition.
pub const GRUB_DIR: &str = "grub";

/// The size of a GRUB environment block.
pub const GRUBENV_SIZE: usize = 1024;

/// A GRUB environment block (what grub-editenv writes): a header, `name=value` lines,
/// `#` up to 1024 bytes. `None` when the variables do not fit.
pub fn grubenv(vars: &[(&str, &str)]) -> Option<String> {
    let mut env = String::from("# GRUB Environment Block\n");
    for (name, value) in vars {
        env.push_str(&format!("{name}={value}\n"));
    }
    let pad = GRUBENV_SIZE.checked_sub(env.len())?;
    env.push_str(&"#".repeat(pad));
    Some(env)
}

/// The disk's GRUB menu. The slot to boot is `corral_slot` (A or B) from the environment
/// block, unless `corral_trial` names a slot on trial: that one boots while
/// `corral_tries` counts down 3, 2, 1, 0; once spent, the trial is dropped and
/// `corral_slot` boots again. Whoever starts a trial (the upgrade) sets all three; a
/// boot that comes up healthy makes the trial slot `corral_slot`.
pub fn grub_disk_cfg(cmdline: &str) -> String {
    let a = layout::number(&SLOT_A);
    let b = layout::number(&SLOT_B);
    format!(
        r#"serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set corral_slot=A
set corral_trial=
set corral_tries=
if [ -s $prefix/grubenv ]; then
  load_env --file $prefix/grubenv corral_slot corral_trial corral_tries
fi
set boot_slot=$corral_slot
if [ -n "$corral_trial" ]; then
  if [ "$corral_tries" = 3 ]; then set corral_tries=2
  elif [ "$corral_tries" = 2 ]; then set corral_tries=1
  elif [ "$corral_tries" = 1 ]; then set corral_tries=0
  else set corral_tries=
  fi
  if [ -n "$corral_tries" ]; then set boot_slot=$corral_trial; else set corral_trial=; fi
  save_env --file $prefix/grubenv corral_trial corral_tries
fi
regexp --set=1:disk '^(.*),gpt[0-9]+$' "$root"
if [ "$boot_slot" = B ]; then set slot=($disk,gpt{b}); else set boot_slot=A; set slot=($disk,gpt{a}); fi
menuentry "Corral (slot $boot_slot)" {{
  linux $slot/vmlinuz {cmdline} corral.slot=$boot_slot
  initrd $slot/initrd
}}
menuentry "Corral (slot $boot_slot) with a root shell on ttyS1 (debugging)" --hotkey=d {{
  linux $slot/vmlinuz {cmdline} corral.slot=$boot_slot {DEBUG_OPTIONS}
  initrd $slot/initrd
}}
"#
    )
}

/// What goes into the disk image.
pub struct DiskInputs<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
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
}

/// Where the ISO keeps the boot kit.
pub const KIT_DIR: &str = "boot/install";

impl BootKit {
    /// The kit's file names, as in [`KIT_DIR`].
    pub const FILES: [&'static str; 5] =
        ["boot.img", "core.img", "BOOTX64.EFI", "grub.cfg", "grubenv"];

    /// The kit in a directory that holds [`BootKit::FILES`].
    pub fn in_dir(dir: &Path) -> BootKit {
        let [boot_img, core_img, efi, grub_cfg, grubenv] = BootKit::FILES.map(|f| dir.join(f));
        BootKit {
            boot_img,
            core_img,
            efi,
            grub_cfg,
            grubenv,
        }
    }

    /// Every file, in the order of [`BootKit::FILES`].
    pub fn files(&self) -> [&Path; 5] {
        [
            &self.boot_img,
            &self.core_img,
            &self.efi,
            &self.grub_cfg,
            &self.grubenv,
        ]
    }
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
    let env = grubenv(&[("corral_slot", "A")]).unwrap_or_default();
    fs::write(&kit.grubenv, env).map_err(io(&kit.grubenv))?;
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
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(io(image))?;
    table.write(&mut disk)?;
    let part = |slot: &layout::Slot| &table.partitions[layout::number(slot) - 1];

    // BIOS: core.img in partition 1, boot.img in the MBR pointing at it.
    let bios_part = part(&layout::BIOS);
    let mut core = fs::read(&kit.core_img).map_err(io(&kit.core_img))?;
    bios::fit_core(&mut core, bios_part)?;
    write_at(image, bios_part.offset(), &core)?;
    let boot_img = fs::read(&kit.boot_img).map_err(io(&kit.boot_img))?;
    let mut mbr = [0u8; 512];
    disk.seek(SeekFrom::Start(0)).map_err(io(image))?;
    disk.read_exact(&mut mbr).map_err(io(image))?;
    let sector = bios::boot_sector(&boot_img, &mbr, bios_part.first)?;
    write_at(image, 0, &sector)?;

    // The ESP: FAT, GRUB for UEFI at the removable path, the menu and the environment.
    let esp = part(&EFI);
    let volume_id = format!(
        "{:02x}{:02x}{:02x}{:02x}",
        inputs.seed[0], inputs.seed[1], inputs.seed[2], inputs.seed[3]
    );
    run(Command::new("mkfs.vfat")
        .arg(format!("--offset={}", esp.first))
        // FAT16: FAT32 wants more clusters than 31 MiB has.
        .args(["-F", "16", "-n", EFI.name, "-i", &volume_id])
        .arg(image)
        .arg((esp.bytes() / 1024).to_string()))?;
    let fat = format!("{}@@{}", image.display(), esp.offset());
    run(Command::new("mmd")
        .args(["-i", &fat])
        .args(["::/EFI", "::/EFI/BOOT"])
        .arg(format!("::/{GRUB_DIR}")))?;
    for (from, to) in [
        (&kit.efi, "::/EFI/BOOT/BOOTX64.EFI".to_string()),
        (&kit.grub_cfg, format!("::/{GRUB_DIR}/grub.cfg")),
        (&kit.grubenv, format!("::/{GRUB_DIR}/grubenv")),
    ] {
        run(Command::new("mcopy").args(["-i", &fat]).arg(from).arg(to))?;
    }

    // Slot A: kernel and initrd. Slot B: left empty for the first upgrade.
    let slot_dir = work.join("slot-a");
    fs::create_dir_all(&slot_dir).map_err(io(&slot_dir))?;
    fs::copy(inputs.kernel, slot_dir.join("vmlinuz")).map_err(io(inputs.kernel))?;
    fs::copy(inputs.initrd, slot_dir.join("initrd")).map_err(io(inputs.initrd))?;
    mkfs_ext4(
        inputs.tools,
        image,
        part(&SLOT_A),
        SLOT_A.name,
        derived(inputs.seed, 101),
        Some(&slot_dir),
    )?;
    // The state filesystem: empty; PID 1 grows it to the disk at first boot.
    mkfs_ext4(
        inputs.tools,
        image,
        part(&STATE),
        STATE.name,
        derived(inputs.seed, 102),
        None,
    )?;
    Ok(table)
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
    fn the_environment_block_is_exactly_1024_bytes() {
        let env = grubenv(&[("corral_slot", "A"), ("corral_trial", "")]).unwrap();
        assert_eq!(env.len(), GRUBENV_SIZE);
        assert!(env.starts_with("# GRUB Environment Block\ncorral_slot=A\ncorral_trial=\n#"));
        let long = "x".repeat(2000);
        assert!(grubenv(&[("v", &long)]).is_none());
    }

    #[test]
    fn the_menu_boots_the_chosen_slot_with_the_command_line() {
        let cfg = grub_disk_cfg("console=ttyS0");
        assert!(cfg.contains("linux $slot/vmlinuz console=ttyS0 corral.slot=$boot_slot\n"));
        assert!(cfg.contains("set slot=($disk,gpt4)"));
        assert!(cfg.contains("set slot=($disk,gpt3)"));
        assert!(cfg.contains(&format!("corral.slot=$boot_slot {DEBUG_OPTIONS}")));
        // A trial counts down and is then dropped.
        for step in [
            "= 3 ]; then set corral_tries=2",
            "= 1 ]; then set corral_tries=0",
        ] {
            assert!(cfg.contains(step), "{step}");
        }
        assert!(cfg.contains("save_env --file $prefix/grubenv corral_trial corral_tries"));
    }

    #[test]
    fn derived_guids_differ_and_repeat() {
        let seed = [3u8; 16];
        assert_ne!(derived(seed, 1), derived(seed, 2));
        assert_eq!(derived(seed, 1), derived(seed, 1));
    }
}
