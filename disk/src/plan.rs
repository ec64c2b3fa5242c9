//! What goes where on a Corral disk: one pure plan that both disk writers carry out, the
//! build's on an image file (corral-iso's `disk`) and `corral install`'s on a block device
//! (corral-cli's `install::write`). The plan writes nothing; it says which bytes go at
//! which offset, which partitions are left blank, and which filesystem each partition
//! gets with which files, in order. docs/disks.md describes the same disk.

use crate::bios;
use crate::error::DiskError;
use crate::gpt::Table;
use crate::grub::GRUB_DIR;
use crate::kit::BootKit;
use crate::layout::{self, Slot, BIOS, EFI, MIB, SLOT_A, SLOT_B, STATE};
use std::path::{Path, PathBuf};

/// Bytes written straight to the disk, after the partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawWrite {
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// What it is, for progress lines and errors.
    pub what: &'static str,
}

/// The filesystems Corral's partitions carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// The EFI system partition: FAT16 (FAT32 wants more clusters than 31 MiB has).
    Fat16,
    Ext4,
}

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file on the machine that writes the disk (the kit, the kernel, the initrd).
    File(PathBuf),
    /// Bytes in hand (the cloud-config to install).
    Bytes(Vec<u8>),
}

/// One file in a filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the filesystem's root.
    pub path: PathBuf,
    pub source: Source,
    /// Readable by root only (mode 0600, its directories 0700): secrets such as a
    /// cloud-config.
    pub private: bool,
}

/// A partition's filesystem and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    /// The 1-based partition number.
    pub number: usize,
    pub kind: FsKind,
    /// The filesystem label (the GPT name: `CORRAL_EFI`, `CORRAL_A`, `CORRAL_STATE`).
    pub label: &'static str,
    pub files: Vec<FileEntry>,
}

/// Everything a writer does, in order: the table, the raw writes, the blank partitions,
/// then each filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub table: Table,
    pub raw: Vec<RawWrite>,
    /// Partitions whose first MiB is zeroed and that get no filesystem (slot B, empty
    /// until the first upgrade), so nothing stale there reads as a filesystem.
    pub blank: Vec<usize>,
    pub filesystems: Vec<Filesystem>,
}

/// What the disk is made of.
pub struct Contents<'a> {
    pub kit: &'a BootKit,
    /// GRUB's i386-pc boot sector and core image, read from the kit
    /// ([`BootKit::boot_code`]).
    pub boot_img: &'a [u8],
    pub core_img: &'a [u8],
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// The root image, which PID 1 reads from the booted slot.
    pub root: &'a Path,
    /// A cloud-config to keep as the machine's own, and where under the state filesystem
    /// it goes.
    pub cloud_config: Option<(&'a Path, &'a [u8])>,
}

/// How much of a partition a writer zeroes to blank it.
pub const BLANK_BYTES: u64 = MIB;

fn partition_of<'t>(table: &'t Table, slot: &Slot) -> Result<&'t crate::gpt::Partition, DiskError> {
    table
        .partitions
        .get(layout::number(slot).wrapping_sub(1))
        .ok_or_else(|| DiskError::Layout(format!("the table has no {} partition", slot.name)))
}

/// The plan for a disk with `table` (from [`layout::table`]) holding `contents`: GRUB's
/// core image in the BIOS boot partition and its boot sector in the MBR (with the
/// protective MBR's partition table, which `Table::write` puts there first), the ESP
/// with GRUB for UEFI at the removable path and the slot menu, slot A with the kernel
/// and the initrd and the root image, slot B blank, the state filesystem with the cloud-config if any.
pub fn plan(table: Table, contents: &Contents) -> Result<Plan, DiskError> {
    let bios_part = partition_of(&table, &BIOS)?;
    let mut core = contents.core_img.to_vec();
    bios::fit_core(&mut core, bios_part)?;
    let sector = bios::boot_sector(contents.boot_img, &table.protective_mbr(), bios_part.first)?;
    let raw = vec![
        RawWrite {
            offset: bios_part.offset(),
            bytes: core,
            what: "GRUB's core image",
        },
        RawWrite {
            offset: 0,
            bytes: sector.to_vec(),
            what: "GRUB's boot sector",
        },
    ];
    let file = |path: String, from: &Path| FileEntry {
        path: path.into(),
        source: Source::File(from.to_path_buf()),
        private: false,
    };
    let kit = contents.kit;
    let fs = |slot: &Slot, kind: FsKind, files: Vec<FileEntry>| Filesystem {
        number: layout::number(slot),
        kind,
        label: slot.name,
        files,
    };
    let state_files = contents
        .cloud_config
        .map(|(at, bytes)| FileEntry {
            path: at.to_path_buf(),
            source: Source::Bytes(bytes.to_vec()),
            private: true,
        })
        .into_iter()
        .collect();
    let filesystems = vec![
        fs(
            &EFI,
            FsKind::Fat16,
            vec![
                file("EFI/BOOT/BOOTX64.EFI".into(), &kit.efi),
                file(format!("{GRUB_DIR}/grub.cfg"), &kit.grub_cfg),
                file(format!("{GRUB_DIR}/grubenv"), &kit.grubenv),
            ],
        ),
        fs(
            &SLOT_A,
            FsKind::Ext4,
            vec![
                file("vmlinuz".into(), contents.kernel),
                file("initrd".into(), contents.initrd),
                file("root.squashfs".into(), contents.root),
                file(crate::grub::SLOT_ENV.into(), &kit.slot_env),
            ],
        ),
        fs(&STATE, FsKind::Ext4, state_files),
    ];
    for f in &filesystems {
        partition_of(&table, &layout::PLAN[f.number - 1])?;
    }
    Ok(Plan {
        raw,
        blank: vec![layout::number(&SLOT_B)],
        filesystems,
        table,
    })
}

impl Plan {
    /// The partition numbered `number` (1-based).
    pub fn partition(&self, number: usize) -> Option<&crate::gpt::Partition> {
        self.table.partitions.get(number.wrapping_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::Guid;

    /// A boot.img that `bios::boot_sector` accepts: a jump at the drive check, 0x55AA.
    fn boot_img() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0x66] = 0xEB;
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn every_partition_gets_its_part_and_the_mbr_keeps_the_protective_table() {
        let mut n = 0u8;
        let table = layout::table(2048 * MIB, || {
            n += 1;
            Guid::from_random([n; 16])
        })
        .expect("table");
        let kit = BootKit::in_dir(Path::new("/kit"));
        // core.img's block list (diskboot.img's last 12 bytes) counts the sectors after
        // its first: 2.
        let mut core = vec![0u8; 512 * 3];
        core[0x200 - 12 + 8] = 2;
        let contents = Contents {
            kit: &kit,
            boot_img: &boot_img(),
            core_img: &core,
            kernel: Path::new("/k/vmlinuz"),
            initrd: Path::new("/k/initrd"),
            root: Path::new("/k/root.squashfs"),
            cloud_config: Some((
                Path::new("corral/conf/cloud-config.yml"),
                b"#cloud-config\n",
            )),
        };
        let plan = plan(table.clone(), &contents).expect("plan");
        assert_eq!(plan.raw[0].offset, table.partitions[0].offset());
        assert_eq!(plan.raw[1].offset, 0);
        assert_eq!(
            plan.raw[1].bytes[446..512],
            table.protective_mbr()[446..512],
            "the boot sector carries the protective MBR's table"
        );
        assert_eq!(plan.blank, [4]);
        let layout: Vec<(usize, FsKind, &str, Vec<&str>)> = plan
            .filesystems
            .iter()
            .map(|f| {
                let files = f
                    .files
                    .iter()
                    .map(|e| e.path.to_str().unwrap_or(""))
                    .collect();
                (f.number, f.kind, f.label, files)
            })
            .collect();
        assert_eq!(
            layout,
            [
                (
                    2,
                    FsKind::Fat16,
                    "CORRAL_EFI",
                    vec!["EFI/BOOT/BOOTX64.EFI", "grub/grub.cfg", "grub/grubenv"]
                ),
                (
                    3,
                    FsKind::Ext4,
                    "CORRAL_A",
                    vec!["vmlinuz", "initrd", "root.squashfs", "boot.env"]
                ),
                (
                    5,
                    FsKind::Ext4,
                    "CORRAL_STATE",
                    vec!["corral/conf/cloud-config.yml"]
                ),
            ]
        );
        let config = &plan.filesystems[2].files[0];
        assert!(config.private);
        assert_eq!(config.source, Source::Bytes(b"#cloud-config\n".to_vec()));
        assert_eq!(
            plan.filesystems[0].files[0].source,
            Source::File("/kit/BOOTX64.EFI".into())
        );
    }

    #[test]
    fn a_bad_boot_sector_is_refused_before_anything_is_planned() {
        let table = layout::table(2048 * MIB, || Guid::from_random([7; 16])).expect("table");
        let kit = BootKit::in_dir(Path::new("/kit"));
        let mut core = vec![0u8; 1024];
        core[0x200 - 12 + 8] = 1;
        let contents = Contents {
            kit: &kit,
            boot_img: &[0u8; 100],
            core_img: &core,
            kernel: Path::new("/k"),
            initrd: Path::new("/i"),
            root: Path::new("/r"),
            cloud_config: None,
        };
        assert!(matches!(
            plan(table, &contents),
            Err(DiskError::Grub {
                what: "boot.img",
                ..
            })
        ));
    }
}
