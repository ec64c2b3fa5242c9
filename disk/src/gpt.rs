//! GUID partition tables (UEFI 2.10, chapter 5): a protective MBR, the primary header and
//! entry array at the start of the disk, their backup at its end. Written and read on any
//! `Read + Write + Seek` (an image file or a block device), 512-byte sectors.

use crate::error::DiskError;
use crate::guid::Guid;
use std::io::{Read, Seek, SeekFrom, Write};

pub const SECTOR: u64 = 512;
/// Entries in the array, each [`ENTRY_SIZE`] bytes: 32 sectors, as every tool writes.
pub const ENTRIES: usize = 128;
pub const ENTRY_SIZE: usize = 128;
const ARRAY_SECTORS: u64 = (ENTRIES * ENTRY_SIZE) as u64 / SECTOR;
const HEADER_SIZE: usize = 92;
const SIGNATURE: &[u8; 8] = b"EFI PART";
const REVISION: u32 = 0x0001_0000;
/// The smallest disk that holds both tables and one sector.
const MIN_SECTORS: u64 = 2 * (1 + ARRAY_SECTORS) + 2;

/// One partition. `first` and `last` are sectors, both inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub type_guid: Guid,
    pub guid: Guid,
    pub first: u64,
    pub last: u64,
    pub attributes: u64,
    pub name: String,
}

impl Partition {
    pub fn sectors(&self) -> u64 {
        self.last + 1 - self.first
    }
    pub fn bytes(&self) -> u64 {
        self.sectors() * SECTOR
    }
    pub fn offset(&self) -> u64 {
        self.first * SECTOR
    }
}

/// A partition table for a disk of `sectors` sectors. Partition `n` (1-based, as Linux
/// numbers them) is `partitions[n - 1]`; the array has no holes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub disk_guid: Guid,
    pub sectors: u64,
    pub partitions: Vec<Partition>,
}

impl Table {
    pub fn first_usable() -> u64 {
        2 + ARRAY_SECTORS
    }

    pub fn last_usable(&self) -> u64 {
        self.sectors.saturating_sub(2 + ARRAY_SECTORS)
    }

    /// Checks that every partition lies in the usable area and none overlap.
    pub fn check(&self) -> Result<(), DiskError> {
        if self.sectors < MIN_SECTORS {
            return Err(DiskError::Layout(format!(
                "a disk of {} sectors is too small for a GPT",
                self.sectors
            )));
        }
        if self.partitions.len() > ENTRIES {
            return Err(DiskError::Layout(format!(
                "{} partitions; a GPT holds {ENTRIES}",
                self.partitions.len()
            )));
        }
        for (i, p) in self.partitions.iter().enumerate() {
            if p.first < Table::first_usable() || p.last > self.last_usable() || p.last < p.first {
                return Err(DiskError::Layout(format!(
                    "partition {} ({}) spans sectors {}..={}, outside {}..={}",
                    i + 1,
                    p.name,
                    p.first,
                    p.last,
                    Table::first_usable(),
                    self.last_usable()
                )));
            }
            if p.name.encode_utf16().count() > 36 {
                return Err(DiskError::Layout(format!(
                    "partition {} is named '{}', longer than GPT's 36 characters",
                    i + 1,
                    p.name
                )));
            }
            for (j, q) in self.partitions.iter().enumerate().skip(i + 1) {
                if p.first <= q.last && q.first <= p.last {
                    return Err(DiskError::Layout(format!(
                        "partitions {} and {} overlap",
                        i + 1,
                        j + 1
                    )));
                }
            }
        }
        Ok(())
    }

    fn entry_array(&self) -> Vec<u8> {
        let mut array = vec![0u8; ENTRIES * ENTRY_SIZE];
        for (p, e) in self.partitions.iter().zip(array.chunks_mut(ENTRY_SIZE)) {
            e[0..16].copy_from_slice(&p.type_guid.0);
            e[16..32].copy_from_slice(&p.guid.0);
            e[32..40].copy_from_slice(&p.first.to_le_bytes());
            e[40..48].copy_from_slice(&p.last.to_le_bytes());
            e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
            for (k, unit) in p.name.encode_utf16().take(36).enumerate() {
                e[56 + 2 * k..58 + 2 * k].copy_from_slice(&unit.to_le_bytes());
            }
        }
        array
    }

    fn header(&self, current: u64, backup: u64, array_lba: u64, array_crc: u32) -> Vec<u8> {
        let mut h = vec![0u8; SECTOR as usize];
        h[0..8].copy_from_slice(SIGNATURE);
        h[8..12].copy_from_slice(&REVISION.to_le_bytes());
        h[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        h[24..32].copy_from_slice(&current.to_le_bytes());
        h[32..40].copy_from_slice(&backup.to_le_bytes());
        h[40..48].copy_from_slice(&Table::first_usable().to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable().to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid.0);
        h[72..80].copy_from_slice(&array_lba.to_le_bytes());
        h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..HEADER_SIZE]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The protective MBR: one partition of type 0xEE over the whole disk (capped at
    /// what 32 bits hold), not bootable, as UEFI asks. Bytes 0..440 (boot code) are
    /// left to the caller.
    pub fn protective_mbr(&self) -> [u8; 512] {
        let mut mbr = [0u8; 512];
        let e = &mut mbr[446..462];
        e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
        e[4] = 0xEE;
        e[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        e[8..12].copy_from_slice(&1u32.to_le_bytes());
        let size = (self.sectors - 1).min(u32::MAX as u64) as u32;
        e[12..16].copy_from_slice(&size.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        mbr
    }

    /// Writes the protective MBR's partition table (keeping the first 440 bytes already
    /// on the disk: boot code), both headers and both entry arrays.
    pub fn write<D: Read + Write + Seek>(&self, disk: &mut D) -> Result<(), DiskError> {
        self.check()?;
        let io = |what: &str| {
            let what = what.to_string();
            move |source| DiskError::Io { what, source }
        };
        let mut mbr = self.protective_mbr();
        let mut code = [0u8; 440];
        disk.seek(SeekFrom::Start(0))
            .map_err(io("seeking to the MBR"))?;
        // A disk shorter than 440 bytes cannot hold a table anyway; check() ruled it out.
        disk.read_exact(&mut code)
            .map_err(io("reading the MBR's boot code"))?;
        mbr[..440].copy_from_slice(&code);
        let array = self.entry_array();
        let crc = crc32fast::hash(&array);
        let backup_lba = self.sectors - 1;
        let backup_array = backup_lba - ARRAY_SECTORS;
        let writes: [(u64, Vec<u8>, &str); 5] = [
            (0, mbr.to_vec(), "writing the protective MBR"),
            (
                1,
                self.header(1, backup_lba, 2, crc),
                "writing the GPT header",
            ),
            (2, array.clone(), "writing the GPT entries"),
            (backup_array, array, "writing the backup GPT entries"),
            (
                backup_lba,
                self.header(backup_lba, 1, backup_array, crc),
                "writing the backup GPT header",
            ),
        ];
        for (lba, bytes, what) in writes {
            disk.seek(SeekFrom::Start(lba * SECTOR)).map_err(io(what))?;
            disk.write_all(&bytes).map_err(io(what))?;
        }
        disk.flush().map_err(io("flushing the partition table"))
    }

    /// Reads the primary table of a disk of `sectors` sectors, checking both CRCs. The
    /// table's own idea of the disk's end (its backup header's place) is kept in
    /// [`Table::sectors`]: an image written to a bigger disk still says where the image
    /// ended, and [`Table::grow_last`] moves it.
    pub fn read<D: Read + Seek>(disk: &mut D) -> Result<Table, DiskError> {
        let io = |what: &'static str| {
            move |source| DiskError::Io {
                what: what.into(),
                source,
            }
        };
        let mut h = vec![0u8; SECTOR as usize];
        disk.seek(SeekFrom::Start(SECTOR))
            .map_err(io("seeking to the GPT header"))?;
        disk.read_exact(&mut h)
            .map_err(io("reading the GPT header"))?;
        if &h[0..8] != SIGNATURE {
            return Err(DiskError::NoTable);
        }
        let u32_at = |o: usize| u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let u64_at = |o: usize| u64_le(&h, o);
        let size = u32_at(12) as usize;
        if !(HEADER_SIZE..=SECTOR as usize).contains(&size) {
            return Err(DiskError::Corrupt(format!("header size {size}")));
        }
        let mut zeroed = h[..size].to_vec();
        zeroed[16..20].fill(0);
        if crc32fast::hash(&zeroed) != u32_at(16) {
            return Err(DiskError::Corrupt("header checksum".into()));
        }
        let (count, entry_size) = (u32_at(80) as usize, u32_at(84) as usize);
        if count == 0 || count > 1024 || !(128..=1024).contains(&entry_size) {
            return Err(DiskError::Corrupt(format!(
                "{count} entries of {entry_size} bytes"
            )));
        }
        let mut array = vec![0u8; count * entry_size];
        let array_at = u64_at(72)
            .checked_mul(SECTOR)
            .ok_or_else(|| DiskError::Corrupt("entry array position".into()))?;
        disk.seek(SeekFrom::Start(array_at))
            .map_err(io("seeking to the GPT entries"))?;
        disk.read_exact(&mut array)
            .map_err(io("reading the GPT entries"))?;
        if crc32fast::hash(&array) != u32_at(88) {
            return Err(DiskError::Corrupt("entry array checksum".into()));
        }
        let mut disk_guid = [0u8; 16];
        disk_guid.copy_from_slice(&h[56..72]);
        let mut partitions = Vec::new();
        let mut empty_slot = None;
        for (slot, e) in array.chunks(entry_size).enumerate() {
            let mut type_guid = [0u8; 16];
            type_guid.copy_from_slice(&e[0..16]);
            if type_guid == [0; 16] {
                empty_slot = empty_slot.or(Some(slot + 1));
                continue;
            }
            // Partitions are numbered by their slot, and a table is rewritten from this
            // list: a partition after an empty slot would be renumbered or lost.
            if let Some(empty) = empty_slot {
                return Err(DiskError::Layout(format!(
                    "partition {} follows the empty slot {empty}; Corral leaves a table \
                     with holes alone (renumber it with sfdisk or gdisk to have it changed)",
                    slot + 1
                )));
            }
            let mut guid = [0u8; 16];
            guid.copy_from_slice(&e[16..32]);
            let units: Vec<u16> = e[56..128]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            partitions.push(Partition {
                type_guid: Guid(type_guid),
                guid: Guid(guid),
                first: u64_le(e, 32),
                last: u64_le(e, 40),
                attributes: u64_le(e, 48),
                name: String::from_utf16_lossy(&units),
            });
        }
        Ok(Table {
            disk_guid: Guid(disk_guid),
            // The backup header is the table's last sector.
            sectors: u64_at(32).saturating_add(1),
            partitions,
        })
    }

    /// Makes the table fit a disk of `disk_sectors` and extends partition `number` to the
    /// end of the usable area, if it is the partition that ends last and the disk has
    /// room after it. Returns the partition's new last sector, or `None` when there is
    /// nothing to grow (the table is unchanged then).
    pub fn grow_last(&mut self, number: usize, disk_sectors: u64) -> Option<u64> {
        let end = self.partitions.iter().map(|p| p.last).max()?;
        let index = number.checked_sub(1)?;
        if self.partitions.get(index)?.last != end || disk_sectors <= self.sectors {
            return None;
        }
        let grown = Table {
            sectors: disk_sectors,
            ..self.clone()
        };
        let last = grown.last_usable();
        // Worth a rewrite only for at least a MiB.
        if last < end.saturating_add((1 << 20) / SECTOR) {
            return None;
        }
        *self = grown;
        self.partitions[index].last = last;
        Some(last)
    }
}

/// The little-endian u64 at `offset` (callers have checked the length).
fn u64_le(bytes: &[u8], offset: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(b)
}

/// A disk's size in sectors, for a file or a block device (seeking to the end works for
/// both).
pub fn sectors_of<D: Seek>(disk: &mut D) -> Result<u64, DiskError> {
    let bytes = disk
        .seek(SeekFrom::End(0))
        .map_err(|source| DiskError::Io {
            what: "finding the disk's size".into(),
            source,
        })?;
    Ok(bytes / SECTOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn linux() -> Guid {
        Guid::parse("0FC63DAF-8483-4772-8E79-3D69D8477DE4").unwrap()
    }

    fn table(sectors: u64) -> Table {
        Table {
            disk_guid: Guid::from_random([7; 16]),
            sectors,
            partitions: vec![
                Partition {
                    type_guid: linux(),
                    guid: Guid::from_random([1; 16]),
                    first: 2048,
                    last: 4095,
                    attributes: 0,
                    name: "ONE".into(),
                },
                Partition {
                    type_guid: linux(),
                    guid: Guid::from_random([2; 16]),
                    first: 4096,
                    last: 8191,
                    attributes: 1 << 60,
                    name: "CORRAL_STATE".into(),
                },
            ],
        }
    }

    fn disk(sectors: u64) -> Cursor<Vec<u8>> {
        Cursor::new(vec![0u8; (sectors * SECTOR) as usize])
    }

    #[test]
    fn writes_what_it_reads_back_and_keeps_boot_code() {
        let mut d = disk(10_000);
        d.get_mut()[..440].fill(0xAB);
        let t = table(10_000);
        t.write(&mut d).unwrap();
        assert_eq!(Table::read(&mut d).unwrap(), t);
        let bytes = d.get_ref();
        assert!(bytes[..440].iter().all(|&b| b == 0xAB));
        assert_eq!(bytes[446 + 4], 0xEE);
        assert_eq!(&bytes[510..512], &[0x55, 0xAA]);
        // The backup header at the last sector, pointing back at the primary.
        let backup = &bytes[(9_999 * SECTOR) as usize..];
        assert_eq!(&backup[0..8], SIGNATURE);
        assert_eq!(u64::from_le_bytes(backup[32..40].try_into().unwrap()), 1);
    }

    #[test]
    fn a_flipped_byte_is_caught() {
        let mut d = disk(10_000);
        table(10_000).write(&mut d).unwrap();
        d.get_mut()[(2 * SECTOR + 40) as usize] ^= 1;
        assert!(matches!(Table::read(&mut d), Err(DiskError::Corrupt(_))));
        let mut blank = disk(100);
        assert!(matches!(Table::read(&mut blank), Err(DiskError::NoTable)));
    }

    #[test]
    fn bad_layouts_are_refused() {
        let mut t = table(10_000);
        t.partitions[1].first = 4000;
        assert!(t.check().unwrap_err().to_string().contains("overlap"));
        let mut t = table(10_000);
        t.partitions[1].last = 9_990;
        assert!(t.check().is_err());
        assert!(table(8_000).check().is_err());
    }

    #[test]
    fn an_image_on_a_bigger_disk_grows_its_last_partition() {
        let mut d = disk(10_000);
        table(10_000).write(&mut d).unwrap();
        d.get_mut().resize((50_000 * SECTOR) as usize, 0);
        let mut t = Table::read(&mut d).unwrap();
        assert_eq!(
            t.sectors, 10_000,
            "the table still ends where the image did"
        );
        assert_eq!(t.grow_last(1, 50_000), None, "partition 1 is not the last");
        assert_eq!(t.grow_last(2, 50_000), Some(50_000 - 34));
        t.write(&mut d).unwrap();
        let again = Table::read(&mut d).unwrap();
        assert_eq!(again.sectors, 50_000);
        assert_eq!(again.partitions[1].last, 49_966);
        assert_eq!(again.partitions[1].attributes, 1 << 60);
        // Grown once: nothing more to do.
        let mut t = again.clone();
        assert_eq!(t.grow_last(2, 50_000), None);
        assert_eq!(t, again);
    }

    #[test]
    fn a_table_with_a_hole_is_refused_not_cut_short() {
        // Slots 1 and 3 used, slot 2 empty: reading used to stop at the hole, and a grow
        // then rewrote the table without partition 3 (and could extend over it).
        let mut d = disk(20_000);
        table(10_000).write(&mut d).unwrap();
        let array = (2 * SECTOR) as usize;
        // Move entry 2 to slot 3 and blank slot 2, then fix both CRCs as a tool would.
        let bytes = d.get_mut();
        let second: Vec<u8> = bytes[array + ENTRY_SIZE..array + 2 * ENTRY_SIZE].to_vec();
        bytes[array + 2 * ENTRY_SIZE..array + 3 * ENTRY_SIZE].copy_from_slice(&second);
        bytes[array + ENTRY_SIZE..array + 2 * ENTRY_SIZE].fill(0);
        let crc = crc32fast::hash(&bytes[array..array + ENTRIES * ENTRY_SIZE]);
        let h = SECTOR as usize;
        bytes[h + 88..h + 92].copy_from_slice(&crc.to_le_bytes());
        bytes[h + 16..h + 20].fill(0);
        let hcrc = crc32fast::hash(&bytes[h..h + HEADER_SIZE]);
        bytes[h + 16..h + 20].copy_from_slice(&hcrc.to_le_bytes());
        let err = Table::read(&mut d).unwrap_err().to_string();
        assert!(
            err.contains("partition 3 follows the empty slot 2"),
            "{err}"
        );
    }

    #[test]
    fn sfdisk_agrees_with_the_table() {
        // An independent reader, when the host has one (util-linux's sfdisk, package fdisk).
        let Ok(out) = std::process::Command::new("sfdisk")
            .arg("--version")
            .output()
        else {
            eprintln!("sfdisk not installed; skipped");
            return;
        };
        assert!(out.status.success());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(10_000 * SECTOR).unwrap();
        table(10_000).write(&mut f).unwrap();
        let dump = std::process::Command::new("sfdisk")
            .arg("--dump")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&dump.stdout);
        assert!(
            dump.status.success(),
            "{}",
            String::from_utf8_lossy(&dump.stderr)
        );
        assert!(text.contains("label: gpt"), "{text}");
        assert!(
            text.contains("start=        4096, size=        4096"),
            "{text}"
        );
        assert!(text.contains("name=\"CORRAL_STATE\""), "{text}");
        assert!(text.contains("last-lba: 9966"), "{text}");
        let verify = std::process::Command::new("sfdisk")
            .arg("--verify")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}
