//! Corral's disk: where each partition goes, what it is called and what it holds. The
//! build writes it into `dist/corral.img`; `corral install` writes it onto a disk; PID 1
//! grows the last partition. docs/disks.md describes the same table.

use crate::error::DiskError;
use crate::gpt::{Partition, Table, SECTOR};
use crate::guid::Guid;

pub const MIB: u64 = 1 << 20;
/// The raw image's size: what EC2 imports (the smallest EBS volume is 1 GiB).
pub const IMAGE_MIB: u64 = 1024;

/// GPT partition types.
pub const BIOS_BOOT_TYPE: &str = "21686148-6449-6E6F-744E-656564454649";
pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
pub const LINUX_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

/// One partition of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The GPT partition name, also the filesystem label (FAT labels are 11 characters,
    /// hence `CORRAL_EFI`).
    pub name: &'static str,
    pub type_guid: &'static str,
    /// Size in MiB; `None` for the last partition, which takes the rest of the disk.
    pub mib: Option<u64>,
}

/// Partition 1: GRUB's core image for BIOS boots (no filesystem).
pub const BIOS: Slot = Slot {
    name: "BIOS",
    type_guid: BIOS_BOOT_TYPE,
    mib: Some(1),
};
/// Partition 2: the EFI system partition (FAT): GRUB for UEFI at the removable path,
/// and the GRUB configuration and environment both firmwares' GRUB read.
pub const EFI: Slot = Slot {
    name: "CORRAL_EFI",
    type_guid: ESP_TYPE,
    mib: Some(31),
};
/// Partitions 3 and 4: boot slots A and B (ext4), each a kernel and an initrd that
/// holds the root image.
pub const SLOT_A: Slot = Slot {
    name: "CORRAL_A",
    type_guid: LINUX_TYPE,
    mib: Some(320),
};
pub const SLOT_B: Slot = Slot {
    name: "CORRAL_B",
    type_guid: LINUX_TYPE,
    mib: Some(320),
};
/// Partition 5: the state partition (ext4), grown to the end of the disk at first boot.
pub const STATE: Slot = Slot {
    name: "CORRAL_STATE",
    type_guid: LINUX_TYPE,
    mib: None,
};

/// The partitions in order: partition `n` is `PLAN[n - 1]`.
pub const PLAN: [Slot; 5] = [BIOS, EFI, SLOT_A, SLOT_B, STATE];

/// 1-based partition numbers, as Linux names them (`vda5`, `nvme0n1p5`).
pub fn number(slot: &Slot) -> usize {
    PLAN.iter().position(|s| s == slot).map_or(0, |i| i + 1)
}

/// The first partition starts at 1 MiB, each one MiB-aligned.
const START_MIB: u64 = 1;

/// The table for a disk of `disk_bytes`, with GUIDs from `guid` (random for an install,
/// derived from the build for a reproducible image).
pub fn table(disk_bytes: u64, mut guid: impl FnMut() -> Guid) -> Result<Table, DiskError> {
    let fixed: u64 = PLAN.iter().filter_map(|s| s.mib).sum();
    // The state partition gets at least a quarter of the image's room.
    let needed = START_MIB + fixed + (IMAGE_MIB - START_MIB - fixed) / 4;
    if disk_bytes / MIB < needed {
        return Err(DiskError::Layout(format!(
            "the disk has {} MiB; Corral needs at least {needed} MiB",
            disk_bytes / MIB
        )));
    }
    let mut table = Table {
        disk_guid: guid(),
        sectors: disk_bytes / SECTOR,
        partitions: Vec::new(),
    };
    let mut first = START_MIB * MIB / SECTOR;
    for slot in PLAN {
        let last = match slot.mib {
            Some(mib) => first + mib * MIB / SECTOR - 1,
            None => table.last_usable(),
        };
        table.partitions.push(Partition {
            type_guid: Guid::parse(slot.type_guid)?,
            guid: guid(),
            first,
            last,
            attributes: 0,
            name: slot.name.to_string(),
        });
        first = last + 1;
    }
    table.check()?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_layout_fills_one_gib() {
        let mut n = 0u8;
        let t = table(IMAGE_MIB * MIB, || {
            n += 1;
            Guid::from_random([n; 16])
        })
        .unwrap();
        let mib = |p: &Partition| (p.offset() / MIB, p.bytes() / MIB);
        let parts: Vec<(u64, u64)> = t.partitions.iter().map(mib).collect();
        assert_eq!(parts[..4], [(1, 1), (2, 31), (33, 320), (353, 320)]);
        assert_eq!(parts[4].0, 673);
        // The state partition runs to the backup table, 17 KiB short of the end.
        assert_eq!(t.partitions[4].last, t.sectors - 34);
        assert_eq!(number(&STATE), 5);
        assert_eq!(number(&EFI), 2);
        let guids: std::collections::BTreeSet<_> = t.partitions.iter().map(|p| p.guid.0).collect();
        assert_eq!(guids.len(), 5, "every partition has its own GUID");
    }

    #[test]
    fn a_small_disk_is_refused_with_the_size_it_needs() {
        let err = table(512 * MIB, Guid::default).unwrap_err().to_string();
        assert!(err.contains("512 MiB") && err.contains("at least"), "{err}");
    }
}
