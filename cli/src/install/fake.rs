//! A machine for the install's unit tests: disks are sparse files, the ISO is a
//! directory, a mount is a symbolic link from the mount point to a directory that stands
//! for the device's filesystem (so what was written stays inspectable after unmounting),
//! and every other call is recorded.

use super::host::{DevNum, Disk, Host, Part};
use std::cell::RefCell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub struct Fake {
    pub root: tempfile::TempDir,
    pub disks: Vec<Disk>,
    /// Labelled devices.
    pub labels: Vec<(PathBuf, String)>,
    pub busy: Vec<(DevNum, String)>,
    /// What mounting the ISO shows.
    pub iso_tree: PathBuf,
    pub calls: RefCell<Vec<String>>,
}

pub const GIB: u64 = 1 << 30;

impl Fake {
    /// A machine with the Corral ISO on `sr0` (a CD) and an empty disk `vda` of
    /// `vda_bytes`.
    pub fn new(vda_bytes: u64) -> Fake {
        let root = tempfile::tempdir().expect("tempdir");
        let iso_tree = root.path().join("iso");
        let kit = iso_tree.join(corral_disk::kit::KIT_DIR);
        fs::create_dir_all(&kit).expect("kit dir");
        let mut boot = vec![0u8; 512];
        boot[0x66] = 0xEB;
        boot[510] = 0x55;
        boot[511] = 0xAA;
        let mut core = vec![0x11u8; 3 * 512];
        // core.img's block list: the start, then the count of sectors after the first.
        core[0x200 - 12..0x200 - 4].copy_from_slice(&2u64.to_le_bytes());
        core[0x200 - 4..0x200 - 2].copy_from_slice(&2u16.to_le_bytes());
        for (name, bytes) in [
            ("boot.img", boot),
            ("core.img", core),
            ("BOOTX64.EFI", b"MZ efi grub".to_vec()),
            ("grub.cfg", b"menuentry corral {}\n".to_vec()),
            (
                "grubenv",
                b"# GRUB Environment Block\ncorral_slot=A\n".to_vec(),
            ),
            (
                "boot.env",
                b"# GRUB Environment Block\ncorral_cmdline=console=ttyS0\n".to_vec(),
            ),
        ] {
            fs::write(kit.join(name), bytes).expect("kit file");
        }
        fs::write(iso_tree.join("boot/vmlinuz"), b"the kernel").expect("kernel");
        fs::write(iso_tree.join("boot/initrd"), vec![7u8; 3 << 20]).expect("initrd");
        fs::write(iso_tree.join("boot/root.squashfs"), vec![5u8; 2 << 20]).expect("root");
        let mut fake = Fake {
            root,
            disks: Vec::new(),
            labels: Vec::new(),
            busy: Vec::new(),
            iso_tree,
            calls: RefCell::new(Vec::new()),
        };
        let sr0 = fake.add_disk("sr0", (11, 0), 100 << 20, &[]);
        fake.disks[0].read_only = true;
        fake.labels.push((sr0, "CORRAL".into()));
        fake.add_disk("vda", (254, 0), vda_bytes, &[]);
        fake
    }

    /// Adds a disk backed by a sparse file, with partitions numbered from 1.
    pub fn add_disk(&mut self, name: &str, dev: DevNum, bytes: u64, parts: &[DevNum]) -> PathBuf {
        let node = self.root.path().join(name);
        let f = fs::File::create(&node).expect("disk file");
        f.set_len(bytes).expect("disk size");
        let partitions = parts
            .iter()
            .enumerate()
            .map(|(i, &d)| Part {
                node: self.root.path().join(format!("{name}{}", i + 1)),
                dev: d,
                number: i + 1,
            })
            .collect();
        self.disks.push(Disk {
            name: name.into(),
            node: node.clone(),
            dev,
            bytes,
            sector: 512,
            model: "QEMU HARDDISK".into(),
            read_only: false,
            partitions,
            holders: Vec::new(),
        });
        node
    }

    pub fn node(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The directory standing for the filesystem on `device`.
    pub fn filesystem(&self, device: &Path) -> PathBuf {
        let name = device.file_name().unwrap_or_default().to_string_lossy();
        self.root.path().join("fs").join(&*name)
    }

    fn record(&self, call: String) {
        self.calls.borrow_mut().push(call);
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

impl Host for Fake {
    fn disks(&self) -> io::Result<Vec<Disk>> {
        Ok(self.disks.clone())
    }

    fn device_number(&self, path: &Path) -> io::Result<Option<DevNum>> {
        for d in &self.disks {
            if d.node == path {
                return Ok(Some(d.dev));
            }
            if let Some(p) = d.partitions.iter().find(|p| p.node == path) {
                return Ok(Some(p.dev));
            }
        }
        fs::metadata(path).map(|_| None)
    }

    fn labelled(&self, label: &str) -> Vec<PathBuf> {
        self.labels
            .iter()
            .filter(|(_, l)| l == label)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn busy(&self) -> Vec<(DevNum, String)> {
        self.busy.clone()
    }

    fn reread_partitions(&self, disk: &Path) -> io::Result<()> {
        self.record(format!("reread {}", disk.display()));
        Ok(())
    }

    fn partition_node(&self, disk: &Disk, number: usize) -> io::Result<PathBuf> {
        Ok(self.node(&format!("{}{number}", disk.name)))
    }

    fn run(&self, program: &str, args: &[&str]) -> io::Result<()> {
        self.record(format!("{program} {}", args.join(" ")));
        Ok(())
    }

    fn mount(&self, device: &Path, dir: &Path, fstype: &str, read_only: bool) -> io::Result<()> {
        let ro = if read_only { " ro" } else { "" };
        self.record(format!("mount {} {fstype}{ro}", device.display()));
        let target = if self.labels.iter().any(|(n, _)| n == device) {
            self.iso_tree.clone()
        } else {
            let fs_dir = self.filesystem(device);
            fs::create_dir_all(&fs_dir)?;
            fs_dir
        };
        fs::remove_dir(dir)?;
        std::os::unix::fs::symlink(target, dir)
    }

    fn unmount(&self, dir: &Path) -> io::Result<()> {
        self.record(format!(
            "unmount {}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        fs::remove_file(dir)
    }

    fn sync(&self) {
        self.record("sync".into());
    }

    fn reboot(&self) -> io::Result<()> {
        self.record("reboot".into());
        Ok(())
    }
}
