//! What `corral install` asks of the machine, behind one trait so that the install's
//! decisions and its sequence of writes are unit-tested with a fake (disks as files,
//! mounts as directories). Reads and writes of a disk's bytes are plain file I/O on its
//! node, the same for both; everything else goes through [`Host`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use corral_host::mountinfo::{mounted, parse_dev, DevNum};

/// A partition of a [`Disk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub node: PathBuf,
    pub dev: DevNum,
    /// The partition number.
    pub number: usize,
}

/// A whole block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The kernel's name (`vda`, `nvme0n1`, `sr0`).
    pub name: String,
    pub node: PathBuf,
    pub dev: DevNum,
    pub bytes: u64,
    /// The logical sector size.
    pub sector: u64,
    /// The vendor's model name, when the kernel knows it.
    pub model: String,
    pub read_only: bool,
    pub partitions: Vec<Part>,
    /// Devices built on this disk or its partitions (device mapper, md).
    pub holders: Vec<String>,
}

impl Disk {
    /// Whether `dev` is this disk or one of its partitions.
    pub fn holds(&self, dev: DevNum) -> bool {
        self.dev == dev || self.partitions.iter().any(|p| p.dev == dev)
    }
}

/// Everything the install does to the machine other than reading and writing bytes.
pub trait Host {
    /// Whole disks (not loop, RAM or zram devices) with their partitions.
    fn disks(&self) -> io::Result<Vec<Disk>>;
    /// The device number of a block device node; `None` when `path` is something else.
    fn device_number(&self, path: &Path) -> io::Result<Option<DevNum>>;
    /// Disks and partitions holding a filesystem labelled `label`.
    fn labelled(&self, label: &str) -> Vec<PathBuf>;
    /// Devices in use, each with what uses it: mounted filesystems (in this mount
    /// namespace and PID 1's) and active swap.
    fn busy(&self) -> Vec<(DevNum, String)>;
    /// Makes the kernel read `disk`'s partition table again.
    fn reread_partitions(&self, disk: &Path) -> io::Result<()>;
    /// The node of partition `number` of `disk`, once the kernel shows it.
    fn partition_node(&self, disk: &Disk, number: usize) -> io::Result<PathBuf>;
    /// Runs a program to its end; an exit other than 0 is an error with its stderr.
    fn run(&self, program: &str, args: &[&str]) -> io::Result<()>;
    /// Mounts the filesystem on `device` at `dir`.
    fn mount(&self, device: &Path, dir: &Path, fstype: &str, read_only: bool) -> io::Result<()>;
    fn unmount(&self, dir: &Path) -> io::Result<()>;
    /// Flushes every filesystem and block device.
    fn sync(&self);
    /// Asks PID 1 to reboot the machine.
    fn reboot(&self) -> io::Result<()>;
}

/// The real machine: sysfs for disks, /proc for mounts, ioctls and mount(2).
pub struct Linux {
    pub sys_block: PathBuf,
    pub dev: PathBuf,
}

impl Default for Linux {
    fn default() -> Linux {
        Linux {
            sys_block: PathBuf::from("/sys/block"),
            dev: PathBuf::from("/dev"),
        }
    }
}

// BLKRRPART from <linux/fs.h>: _IO(0x12, 95).
nix::ioctl_none!(blkrrpart, 0x12, 95);

fn read_trim(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

impl Linux {
    /// The node for a sysfs name (`cciss!c0d0` is `/dev/cciss/c0d0`).
    fn node(&self, name: &str) -> PathBuf {
        self.dev.join(name.replace('!', "/"))
    }

    fn disk(&self, name: &str) -> Option<Disk> {
        let dir = self.sys_block.join(name);
        let dev = parse_dev(&read_trim(&dir.join("dev"))?)?;
        let sectors: u64 = read_trim(&dir.join("size"))?.parse().ok()?;
        let mut holders = names_in(&dir.join("holders"));
        let mut partitions = Vec::new();
        for child in names_in(&dir) {
            let pdir = dir.join(&child);
            let Some(number) = read_trim(&pdir.join("partition")).and_then(|n| n.parse().ok())
            else {
                continue;
            };
            let Some(pdev) = read_trim(&pdir.join("dev")).and_then(|d| parse_dev(&d)) else {
                continue;
            };
            holders.extend(names_in(&pdir.join("holders")));
            partitions.push(Part {
                node: self.node(&child),
                dev: pdev,
                number,
            });
        }
        partitions.sort_by_key(|p| p.number);
        Some(Disk {
            name: name.to_string(),
            node: self.node(name),
            dev,
            // sysfs counts 512-byte sectors whatever the device's own size.
            bytes: sectors * 512,
            sector: read_trim(&dir.join("queue/logical_block_size"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(512),
            model: read_trim(&dir.join("device/model")).unwrap_or_default(),
            read_only: read_trim(&dir.join("ro")).as_deref() == Some("1"),
            partitions,
            holders,
        })
    }
}

impl Host for Linux {
    fn disks(&self) -> io::Result<Vec<Disk>> {
        fs::read_dir(&self.sys_block)?;
        Ok(names_in(&self.sys_block)
            .iter()
            .filter(|n| !["loop", "ram", "zram"].iter().any(|p| n.starts_with(p)))
            .filter_map(|n| self.disk(n))
            .collect())
    }

    fn device_number(&self, path: &Path) -> io::Result<Option<DevNum>> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = fs::metadata(path)?;
        if !meta.file_type().is_block_device() {
            return Ok(None);
        }
        let rdev = meta.rdev();
        Ok(Some((
            nix::sys::stat::major(rdev) as u32,
            nix::sys::stat::minor(rdev) as u32,
        )))
    }

    fn labelled(&self, label: &str) -> Vec<PathBuf> {
        corral_host::label::find(Path::new("/sys/class/block"), &self.dev, &[label])
            .into_iter()
            .map(|(node, _)| node)
            .collect()
    }

    fn busy(&self) -> Vec<(DevNum, String)> {
        let mut out = Vec::new();
        // The console shares PID 1's process namespace; its mounts are the host's.
        for (file, whose) in [
            ("/proc/1/mountinfo", "on the host"),
            ("/proc/self/mountinfo", "here"),
        ] {
            if let Ok(text) = fs::read_to_string(file) {
                out.extend(
                    mounted(&text)
                        .into_iter()
                        .map(|(dev, at)| (dev, format!("mounted on {at} {whose}"))),
                );
            }
        }
        if let Ok(swaps) = fs::read_to_string("/proc/swaps") {
            for name in swaps.lines().skip(1).filter_map(|l| l.split(' ').next()) {
                if let Ok(Some(dev)) = self.device_number(Path::new(name)) {
                    out.push((dev, "used as swap".into()));
                }
            }
        }
        out
    }

    fn reread_partitions(&self, disk: &Path) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let f = fs::File::open(disk)?;
        // SAFETY: BLKRRPART takes no argument; the descriptor is open for the call.
        unsafe { blkrrpart(f.as_raw_fd()) }.map_err(io::Error::from)?;
        Ok(())
    }

    fn partition_node(&self, disk: &Disk, number: usize) -> io::Result<PathBuf> {
        // The kernel adds partitions at once; devtmpfs makes their nodes a moment later.
        for _ in 0..100 {
            if let Some(node) = self
                .disk(&disk.name)
                .and_then(|d| d.partitions.into_iter().find(|p| p.number == number))
                .map(|p| p.node)
                .filter(|n| n.exists())
            {
                return Ok(node);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "partition {number} of {} did not appear after the table was re-read",
                disk.node.display()
            ),
        ))
    }

    fn run(&self, program: &str, args: &[&str]) -> io::Result<()> {
        // PID 1's runner: a clean environment; the exit status and stderr in the error.
        corral_host::command::run(program, args).map_err(io::Error::other)
    }

    fn mount(&self, device: &Path, dir: &Path, fstype: &str, read_only: bool) -> io::Result<()> {
        use nix::mount::MsFlags;
        let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        if read_only {
            flags |= MsFlags::MS_RDONLY;
        }
        nix::mount::mount(Some(device), dir, Some(fstype), flags, None::<&str>)
            .map_err(io::Error::from)
    }

    fn unmount(&self, dir: &Path) -> io::Result<()> {
        nix::mount::umount2(dir, nix::mount::MntFlags::empty()).map_err(io::Error::from)
    }

    fn sync(&self) {
        nix::unistd::sync();
    }

    fn reboot(&self) -> io::Result<()> {
        // PID 1 reboots on SIGTERM (docs/boot.md); the console shares its PID namespace.
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), nix::sys::signal::SIGTERM)
            .map_err(io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_and_partitions_come_from_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let sys = root.path().join("block");
        let w = |p: &str, s: &str| {
            let path = sys.join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, s).unwrap();
        };
        w("vda/dev", "254:0\n");
        w("vda/size", "6291456\n");
        w("vda/ro", "0\n");
        w("vda/queue/logical_block_size", "512\n");
        w("vda/vda2/partition", "2\n");
        w("vda/vda2/dev", "254:2\n");
        w("vda/vda1/partition", "1\n");
        w("vda/vda1/dev", "254:1\n");
        fs::create_dir_all(sys.join("vda/vda1/holders/dm-0")).unwrap();
        w("sr0/dev", "11:0\n");
        w("sr0/size", "210944\n");
        w("sr0/ro", "1\n");
        w("sr0/device/model", "QEMU CD-ROM     \n");
        w("loop0/dev", "7:0\n");
        w("loop0/size", "100\n");
        let host = Linux {
            sys_block: sys,
            dev: PathBuf::from("/dev"),
        };
        let disks = host.disks().unwrap();
        assert_eq!(disks.len(), 2, "loop devices are left out: {disks:?}");
        let sr0 = &disks[0];
        assert_eq!(
            (sr0.name.as_str(), sr0.read_only, sr0.model.as_str()),
            ("sr0", true, "QEMU CD-ROM")
        );
        let vda = &disks[1];
        assert_eq!(vda.bytes, 3 << 30);
        assert_eq!(vda.node, PathBuf::from("/dev/vda"));
        let numbers: Vec<usize> = vda.partitions.iter().map(|p| p.number).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!(vda.partitions[0].node, PathBuf::from("/dev/vda1"));
        assert_eq!(vda.holders, ["dm-0"]);
        assert!(vda.holds((254, 2)) && !vda.holds((11, 0)));
    }
}
