//! What `grub-bios-setup` does for a GPT disk whose core image sits in a BIOS boot
//! partition, done on bytes so that the build (on an image file, without root or loop
//! devices) and `corral install` (on a device) share it. Offsets are GRUB 2's
//! (`include/grub/i386/pc/boot.h`, `grub-core/boot/i386/pc/diskboot.S`).

use crate::error::DiskError;
use crate::gpt::Partition;

/// Where boot.img keeps the first sector of core.img (a 64-bit LBA).
const KERNEL_SECTOR: usize = 0x5c;
/// A two-byte jump that skips the boot-drive fix-up for floppies; hard disks get NOPs,
/// as grub-bios-setup writes them (some BIOSes pass a wrong drive number).
const DRIVE_CHECK: usize = 0x66;
/// Where the MBR's disk signature and partition table start; boot code ends here.
const TABLE_START: usize = 0x1b8;
/// diskboot.img (core.img's first sector) ends with a block list: start (64-bit LBA),
/// count (16-bit sectors), segment (16-bit), read backwards from here.
const BLOCKLIST: usize = 0x200 - 12;

/// GRUB's boot sector for a disk whose current MBR is `mbr`: boot.img's code with the
/// disk's own signature and partition table, pointed at core.img at `core_lba`.
pub fn boot_sector(
    boot_img: &[u8],
    mbr: &[u8; 512],
    core_lba: u64,
) -> Result<[u8; 512], DiskError> {
    if boot_img.len() != 512 || boot_img[510..512] != [0x55, 0xAA] {
        return Err(DiskError::Grub {
            what: "boot.img",
            why: format!(
                "{} bytes, expected one 512-byte boot sector",
                boot_img.len()
            ),
        });
    }
    let mut sector = [0u8; 512];
    sector.copy_from_slice(boot_img);
    if sector[DRIVE_CHECK] != 0xEB {
        return Err(DiskError::Grub {
            what: "boot.img",
            why: format!("no jump at {DRIVE_CHECK:#x}"),
        });
    }
    sector[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());
    sector[DRIVE_CHECK..DRIVE_CHECK + 2].copy_from_slice(&[0x90, 0x90]);
    sector[TABLE_START..510].copy_from_slice(&mbr[TABLE_START..510]);
    Ok(sector)
}

/// Points core.img's block list at the sectors after its first, for a core.img written
/// contiguously from `core_lba`. grub-mkimage leaves the count already right (all
/// sectors but the first) and the start at 2; only the start moves.
pub fn patch_core(core: &mut [u8], core_lba: u64) -> Result<(), DiskError> {
    let sectors = core.len().div_ceil(512);
    let bad = |why: String| DiskError::Grub {
        what: "core.img",
        why,
    };
    if sectors < 2 {
        return Err(bad(format!("{} bytes is too short", core.len())));
    }
    let count = u16::from_le_bytes([core[BLOCKLIST + 8], core[BLOCKLIST + 9]]) as usize;
    if count != sectors - 1 {
        return Err(bad(format!(
            "its block list counts {count} sectors after the first, the file has {}",
            sectors - 1
        )));
    }
    let start = core_lba + 1;
    core[BLOCKLIST..BLOCKLIST + 8].copy_from_slice(&start.to_le_bytes());
    Ok(())
}

/// Checks that core.img fits the BIOS boot partition `part` and points its block list
/// there, for writing at the partition's first sector.
pub fn fit_core(core: &mut [u8], part: &Partition) -> Result<(), DiskError> {
    if core.len() as u64 > part.bytes() {
        return Err(DiskError::Grub {
            what: "core.img",
            why: format!(
                "{} bytes; the BIOS boot partition holds {}",
                core.len(),
                part.bytes()
            ),
        });
    }
    patch_core(core, part.first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot_img() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[KERNEL_SECTOR] = 1;
        b[0x64] = 0xFF;
        b[DRIVE_CHECK] = 0xEB;
        b[DRIVE_CHECK + 1] = 0x05;
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn the_boot_sector_points_at_core_and_keeps_the_partition_table() {
        let mut mbr = [0u8; 512];
        mbr[446 + 4] = 0xEE;
        mbr[0x1b8] = 0x12;
        let s = boot_sector(&boot_img(), &mbr, 2048).unwrap();
        assert_eq!(&s[KERNEL_SECTOR..KERNEL_SECTOR + 8], &2048u64.to_le_bytes());
        assert_eq!(&s[DRIVE_CHECK..DRIVE_CHECK + 2], &[0x90, 0x90]);
        assert_eq!(s[0x64], 0xFF, "the boot drive byte is untouched");
        assert_eq!(s[446 + 4], 0xEE);
        assert_eq!(s[0x1b8], 0x12);
        assert_eq!(&s[510..], &[0x55, 0xAA]);
        assert!(boot_sector(&[0u8; 100], &mbr, 2048).is_err());
    }

    #[test]
    fn the_core_block_list_moves_to_the_partition() {
        let mut core = vec![0u8; 3 * 512 + 7];
        core[BLOCKLIST] = 2;
        core[BLOCKLIST + 8] = 3;
        patch_core(&mut core, 2048).unwrap();
        assert_eq!(&core[BLOCKLIST..BLOCKLIST + 8], &2049u64.to_le_bytes());
        assert_eq!(core[BLOCKLIST + 8], 3);
        let mut wrong = vec![0u8; 3 * 512];
        assert!(patch_core(&mut wrong, 2048).is_err());
    }

    #[test]
    fn core_must_fit_its_partition() {
        let part = Partition {
            type_guid: crate::Guid::default(),
            guid: crate::Guid::default(),
            first: 2048,
            last: 2049,
            attributes: 0,
            name: "BIOS".into(),
        };
        let mut core = vec![0u8; 3 * 512];
        core[BLOCKLIST + 8] = 2;
        let err = fit_core(&mut core, &part).unwrap_err().to_string();
        assert!(
            err.contains("1536 bytes") && err.contains("holds 1024"),
            "{err}"
        );
        let mut small = vec![0u8; 2 * 512];
        small[BLOCKLIST + 8] = 1;
        fit_core(&mut small, &part).unwrap();
        assert_eq!(&small[BLOCKLIST..BLOCKLIST + 8], &2049u64.to_le_bytes());
    }

    #[test]
    fn grub_s_own_images_are_accepted() {
        // Debian's grub-pc-bin, when the build host has it.
        let dir = std::path::Path::new("/usr/lib/grub/i386-pc");
        let Ok(boot) = std::fs::read(dir.join("boot.img")) else {
            eprintln!("grub-pc-bin not installed; skipped");
            return;
        };
        assert!(boot_sector(&boot, &[0u8; 512], 2048).is_ok());
        let out = tempfile::tempdir().unwrap();
        let core = out.path().join("core.img");
        let status = std::process::Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-p", "(,gpt2)/grub", "-o"])
            .arg(&core)
            .args(["biosdisk", "part_gpt", "fat"])
            .status()
            .unwrap();
        assert!(status.success());
        let mut bytes = std::fs::read(&core).unwrap();
        patch_core(&mut bytes, 2048).unwrap();
    }
}
