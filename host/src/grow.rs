//! Growing the state partition into the rest of its disk: the GPT rewritten by
//! corral-disk (backup table moved to the disk's end, the last partition extended), then
//! the kernel told the new size with BLKPG, which works while other partitions of the
//! disk are in use (BLKRRPART would not). The filesystem grows after it is mounted.

use crate::error::{HostError, Result};
use corral_disk::gpt::{sectors_of, Table, SECTOR};
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// `struct blkpg_partition` from <linux/blkpg.h>.
#[repr(C)]
struct BlkpgPartition {
    start: i64,
    length: i64,
    pno: i32,
    devname: [u8; 64],
    volname: [u8; 64],
}

/// `struct blkpg_ioctl_arg` from <linux/blkpg.h>.
#[repr(C)]
struct BlkpgIoctlArg {
    op: i32,
    flags: i32,
    datalen: i32,
    data: *mut BlkpgPartition,
}

const BLKPG: u32 = 0x1269;
const BLKPG_RESIZE_PARTITION: i32 = 3;
nix::ioctl_write_ptr_bad!(blkpg, BLKPG, BlkpgIoctlArg);

/// The disk a partition belongs to and its number, from sysfs: `/sys/class/block/vda5`
/// links into the disk's directory and holds a `partition` file. `None` for a whole disk.
fn disk_of(partition: &Path) -> Option<(PathBuf, usize)> {
    let name = partition.file_name()?;
    let sys = Path::new("/sys/class/block").join(name);
    let number = std::fs::read_to_string(sys.join("partition"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let real = std::fs::canonicalize(&sys).ok()?;
    let disk = real.parent()?.file_name()?;
    Some((Path::new("/dev").join(disk), number))
}

/// See the module documentation. `Ok(None)` when there is nothing to grow.
pub fn grow(partition: &Path) -> Result<Option<u64>> {
    let err = |detail: String| HostError::Grow {
        partition: partition.to_path_buf(),
        detail,
    };
    let Some((disk, number)) = disk_of(partition) else {
        return Ok(None);
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk)
        .map_err(|e| err(format!("opening {}: {e}", disk.display())))?;
    let mut table = match Table::read(&mut file) {
        Ok(t) => t,
        // An MBR disk or a bare filesystem: not ours to change.
        Err(corral_disk::DiskError::NoTable) => return Ok(None),
        Err(e) => return Err(err(format!("{}: {e}", disk.display()))),
    };
    let sectors = sectors_of(&mut file).map_err(|e| err(e.to_string()))?;
    if table.grow_last(number, sectors).is_none() {
        return Ok(None);
    }
    // Nothing is written unless the grown table is whole: in the disk, no overlaps.
    table
        .check()
        .map_err(|e| err(format!("{}: {e}; left unchanged", disk.display())))?;
    table.write(&mut file).map_err(|e| err(e.to_string()))?;
    file.sync_all()
        .map_err(|e| err(format!("syncing {}: {e}", disk.display())))?;
    let p = &table.partitions[number - 1];
    let mut part = BlkpgPartition {
        start: (p.first * SECTOR) as i64,
        length: (p.sectors() * SECTOR) as i64,
        pno: number as i32,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as i32,
        data: &mut part,
    };
    // SAFETY: `arg` points at a live, correctly laid out blkpg_partition for the call.
    unsafe { blkpg(file.as_raw_fd(), &arg) }
        .map_err(|e| err(format!("BLKPG_RESIZE_PARTITION on {}: {e}", disk.display())))?;
    Ok(Some(p.bytes()))
}
