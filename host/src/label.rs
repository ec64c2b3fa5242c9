//! Filesystem labels read from the device itself, as blkid does, for the few filesystems
//! Corral looks for by label: ISO 9660 (NoCloud `cidata`, config drive `config-2`), FAT
//! (the same, written by other tools) and ext4 (`CORRAL_STATE`). There is no udev, so no
//! /dev/disk/by-label; reading 64 KiB of a device is cheap.

use std::io::Read;
use std::path::{Path, PathBuf};

/// How much of a device is read: the ISO 9660 primary volume descriptor ends at 34 KiB.
const HEAD: usize = 36 * 1024;

/// The label in a device's first bytes, if it holds one of the filesystems above.
pub fn from_bytes(head: &[u8]) -> Option<String> {
    let text = |b: &[u8]| {
        let s: String = b
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as char)
            .collect();
        let s = s.trim_end().to_string();
        (!s.is_empty()).then_some(s)
    };
    // ISO 9660: the primary volume descriptor in sector 16 (type 1, "CD001").
    if let Some(pvd) = head.get(32768..32768 + 72) {
        if pvd[0] == 1 && &pvd[1..6] == b"CD001" {
            return text(&pvd[40..72]);
        }
    }
    // ext2/3/4: the superblock at 1024, magic 0xEF53 at 56, the label at 120.
    if let Some(sb) = head.get(1024..1024 + 136) {
        if sb[56..58] == [0x53, 0xef] {
            return text(&sb[120..136]);
        }
    }
    // FAT: a boot sector with its signature; FAT32 keeps the label at 71, FAT12/16 at 43.
    if head.len() >= 512 && head[510..512] == [0x55, 0xaa] {
        if &head[82..87] == b"FAT32" {
            return text(&head[71..82]).filter(|l| l != "NO NAME");
        }
        if &head[54..57] == b"FAT" {
            return text(&head[43..54]).filter(|l| l != "NO NAME");
        }
    }
    None
}

/// The label of the filesystem on `device`, if it has one Corral reads.
pub fn of_device(device: &Path) -> Option<String> {
    let mut head = Vec::with_capacity(HEAD);
    std::fs::File::open(device)
        .ok()?
        .take(HEAD as u64)
        .read_to_end(&mut head)
        .ok()?;
    from_bytes(&head)
}

/// Block devices and partitions whose label is one of `labels` (compared without case),
/// from `sys_block` (/sys/class/block) and their nodes in `dev` (/dev).
pub fn find(sys_block: &Path, dev: &Path, labels: &[&str]) -> Vec<(PathBuf, String)> {
    let mut names: Vec<String> = std::fs::read_dir(sys_block)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !["loop", "ram", "zram"].iter().any(|p| n.starts_with(p)))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let node = dev.join(&name);
            let label = of_device(&node)?;
            labels
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&label))
                .then_some((node, label))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(label: &str) -> Vec<u8> {
        let mut b = vec![0u8; HEAD];
        b[32768] = 1;
        b[32769..32774].copy_from_slice(b"CD001");
        let mut id = [b' '; 32];
        id[..label.len()].copy_from_slice(label.as_bytes());
        b[32768 + 40..32768 + 72].copy_from_slice(&id);
        b
    }

    #[test]
    fn iso9660_ext4_and_fat_labels() {
        assert_eq!(from_bytes(&iso("cidata")).as_deref(), Some("cidata"));
        let mut ext = vec![0u8; 4096];
        ext[1024 + 56..1024 + 58].copy_from_slice(&[0x53, 0xef]);
        ext[1024 + 120..1024 + 132].copy_from_slice(b"CORRAL_STATE");
        assert_eq!(from_bytes(&ext).as_deref(), Some("CORRAL_STATE"));
        let mut fat = vec![0u8; 512];
        fat[510..512].copy_from_slice(&[0x55, 0xaa]);
        fat[54..62].copy_from_slice(b"FAT12   ");
        fat[43..54].copy_from_slice(b"CIDATA     ");
        assert_eq!(from_bytes(&fat).as_deref(), Some("CIDATA"));
        let mut fat32 = vec![0u8; 512];
        fat32[510..512].copy_from_slice(&[0x55, 0xaa]);
        fat32[82..90].copy_from_slice(b"FAT32   ");
        fat32[71..82].copy_from_slice(b"NO NAME    ");
        assert_eq!(from_bytes(&fat32), None);
        assert_eq!(from_bytes(&[0u8; 100]), None);
        assert_eq!(from_bytes(&[]), None);
    }

    #[test]
    fn finds_devices_by_label_in_any_case() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sys, dev) = (dir.path().join("sys"), dir.path().join("dev"));
        for name in ["sr0", "sr1", "vda", "loop0"] {
            std::fs::create_dir_all(sys.join(name)).expect("mkdir");
        }
        std::fs::create_dir_all(&dev).expect("mkdir");
        std::fs::write(dev.join("sr0"), iso("CORRAL")).expect("write");
        std::fs::write(dev.join("sr1"), iso("CIDATA")).expect("write");
        std::fs::write(dev.join("loop0"), iso("cidata")).expect("write");
        // vda has no node: skipped.
        let found = find(&sys, &dev, &["cidata"]);
        assert_eq!(found, [(dev.join("sr1"), "CIDATA".to_string())]);
    }
}
