//! The boot state's files: GRUB's environment block on a mounted ESP, rewritten in
//! place (GRUB itself writes it in place, so its blocks must not move: no temporary file
//! and rename, which would give it new clusters), and the slots' record on the state
//! partition (`/var/lib/corral/upgrade/slots.json`, written atomically): what each slot
//! holds and the last rollback with its reason. The decisions are corral-disk's
//! [`corral_disk::bootenv`].

use crate::error::{io, Result};
use corral_disk::bootenv::{BootEnv, Slot};
use corral_disk::grub::{GRUBENV_SIZE, GRUB_DIR};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The environment block on an ESP mounted at `esp`.
pub fn grubenv_path(esp: &Path) -> PathBuf {
    esp.join(GRUB_DIR).join("grubenv")
}

/// Reads the boot state from an ESP mounted at `esp` (see [`BootEnv::parse`]).
pub fn read(esp: &Path) -> Result<(BootEnv, bool)> {
    let path = grubenv_path(esp);
    let mut bytes = Vec::new();
    fs::File::open(&path)
        .and_then(|f| f.take(GRUBENV_SIZE as u64).read_to_end(&mut bytes))
        .map_err(io("reading the boot state", &path))?;
    Ok(BootEnv::parse(&bytes))
}

/// Writes `env` over the block in place and syncs it.
pub fn write(esp: &Path, env: &BootEnv) -> Result<()> {
    let path = grubenv_path(esp);
    let bytes = env.render();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io("opening the boot state", &path))?;
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&bytes))
        .and_then(|()| file.sync_all())
        .map_err(io("writing the boot state", &path))
}

/// What a slot was last written with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub version: String,
    pub build_id: String,
    /// Unix seconds.
    pub written_at: u64,
}

/// A trial that ended without the slot becoming good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    pub slot: Slot,
    pub version: Option<String>,
    pub reason: String,
    /// Unix seconds, when the rollback was recorded.
    pub at: u64,
}

/// The slots' record on the state partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub a: Option<SlotRecord>,
    pub b: Option<SlotRecord>,
    pub last_rollback: Option<Rollback>,
    /// Why the current trial boot was cancelled, written by the trial boot before it
    /// reboots, so the next boot can say why it rolled back.
    pub trial_failure: Option<String>,
    /// The services that ran when the upgrade was made: a trial boot is healthy only
    /// once each runs again.
    #[serde(default)]
    pub services_before: Vec<String>,
}

/// The largest record read back (it is a few hundred bytes).
const MAX_RECORD: u64 = 64 << 10;

impl Record {
    pub fn slot(&self, slot: Slot) -> Option<&SlotRecord> {
        match slot {
            Slot::A => self.a.as_ref(),
            Slot::B => self.b.as_ref(),
        }
    }

    pub fn set(&mut self, slot: Slot, record: Option<SlotRecord>) {
        match slot {
            Slot::A => self.a = record,
            Slot::B => self.b = record,
        }
    }

    /// Reads the record; a missing or unreadable one is empty (it only describes).
    pub fn load(path: &Path) -> Record {
        let mut bytes = Vec::new();
        let read = fs::File::open(path).and_then(|f| f.take(MAX_RECORD).read_to_end(&mut bytes));
        match read {
            Ok(_) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                log::warn!(
                    "{} is not readable ({e}); starting it again",
                    path.display()
                );
                Record::default()
            }),
            Err(_) => Record::default(),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io("making the directory", dir))?;
        }
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        crate::fsutil::write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = grubenv_path(dir.path());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, BootEnv::default().render()).unwrap();
        let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap());
        let armed = BootEnv::default().arm(Slot::A).unwrap();
        write(dir.path(), &armed).unwrap();
        assert_eq!(read(dir.path()).unwrap(), (armed, true));
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&meta), inode);
        assert_eq!(meta.len(), GRUBENV_SIZE as u64);
    }

    #[test]
    fn the_record_round_trips_and_a_damaged_one_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upgrade/slots.json");
        assert_eq!(Record::load(&path), Record::default());
        let mut r = Record::default();
        r.set(
            Slot::B,
            Some(SlotRecord {
                version: "0.2.0".into(),
                build_id: "x".into(),
                written_at: 5,
            }),
        );
        r.save(&path).unwrap();
        assert_eq!(Record::load(&path), r);
        fs::write(&path, "{not json").unwrap();
        assert_eq!(Record::load(&path), Record::default());
    }
}
