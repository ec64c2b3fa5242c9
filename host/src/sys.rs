//! System calls that boot logic makes, behind one trait, so the logic is unit-tested with
//! a recording fake and no root (youki's `syscall/syscall.rs` does the same). The real
//! implementation is [`Linux`]; the fake is [`fake::FakeSys`]. Callers receive a
//! `&dyn Sys` explicitly: nothing picks an implementation by `cfg!(test)`.

use crate::error::{HostError, Result};
use nix::mount::{MntFlags, MsFlags};
use std::ffi::CString;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The system calls PID 1 makes during boot and shutdown.
pub trait Sys {
    /// mount(2). `source` and `data` are optional as in the C call.
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()>;
    /// umount2(2).
    fn umount(&self, target: &Path, flags: MntFlags) -> Result<()>;
    /// `mkdir -p` with mode 0755.
    fn mkdir_all(&self, path: &Path) -> Result<()>;
    /// rmdir(2): removes an empty directory (or a cgroup without processes).
    fn remove_dir(&self, path: &Path) -> Result<()>;
    /// Reads a whole file as text.
    fn read_to_string(&self, path: &Path) -> Result<String>;
    /// Writes a whole file (used for sysctls under /proc/sys).
    fn write(&self, path: &Path, contents: &str) -> Result<()>;
    /// Whether a path exists.
    fn exists(&self, path: &Path) -> bool;
    /// finit_module(2) on the file at `path`, with module parameters.
    fn load_module(&self, name: &str, path: &Path, params: &str) -> Result<()>;
    /// Attaches `file` read-only to a free loop device and returns the device path.
    fn attach_loop(&self, file: &Path) -> Result<PathBuf>;
    /// Makes `new_root` the root: moves it over `/`, then chroot(2) into it.
    fn switch_root(&self, new_root: &Path) -> Result<()>;
    /// sethostname(2).
    fn set_hostname(&self, name: &str) -> Result<()>;
    /// Block devices and partitions whose filesystem carries `label`, in name order.
    fn find_labelled(&self, label: &str) -> Vec<PathBuf>;
    /// The first `len` bytes of a file or device (fewer if it is shorter).
    fn read_head(&self, path: &Path, len: usize) -> Result<Vec<u8>>;
    /// The last `len` bytes of a file or device (all of it if it is shorter): where a
    /// GPT keeps its backup copy.
    fn read_tail(&self, path: &Path, len: usize) -> Result<Vec<u8>>;
    /// Runs a program to its end; an exit other than 0 is an error carrying its stderr.
    fn run(&self, program: &str, args: &[&str]) -> Result<()>;
    /// [`Sys::run`], returning what the program printed on stdout; one still running
    /// after `limit` is killed and is an error.
    fn output(&self, program: &str, args: &[&str], limit: std::time::Duration) -> Result<String>;
    /// Grows `partition` to the end of its disk when it is the disk's last GPT partition
    /// and the disk has room after it (an image written to a bigger disk); tells the
    /// kernel the new size. Returns the new size in bytes, `None` if nothing changed.
    fn grow_partition(&self, partition: &Path) -> Result<Option<u64>>;
    /// Whether NVMe controllers exist whose namespaces the kernel may still be adding
    /// (NVMe probes asynchronously).
    fn nvme_present(&self) -> bool;
    /// Sleeps (waiting for devices).
    fn sleep(&self, duration: std::time::Duration);
}

/// How often [`poll_devices`] looks again.
pub const DEVICE_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Devices show up asynchronously after their drivers load (there is no udev to wait
/// on): calls `look` until it finds some or `limit` has passed, every [`DEVICE_POLL`],
/// and returns what it found last (nothing, once the time is up).
pub fn poll_devices(
    sys: &dyn Sys,
    limit: std::time::Duration,
    mut look: impl FnMut() -> Vec<PathBuf>,
) -> Vec<PathBuf> {
    let mut waited = std::time::Duration::ZERO;
    loop {
        let found = look();
        if !found.is_empty() || waited >= limit {
            return found;
        }
        sys.sleep(DEVICE_POLL);
        waited += DEVICE_POLL;
    }
}

/// The real system calls.
pub struct Linux;

// Loop device ioctls from <linux/loop.h>. LOOP_SET_FD with a read-only file descriptor
// makes the device read-only, so no loop_info64 structure is needed.
const LOOP_CTL_GET_FREE: u32 = 0x4C82;
const LOOP_SET_FD: u32 = 0x4C00;
nix::ioctl_none_bad!(loop_ctl_get_free, LOOP_CTL_GET_FREE);
nix::ioctl_write_int_bad!(loop_set_fd, LOOP_SET_FD);

impl Sys for Linux {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(|source| HostError::Mount {
            fstype: fstype.unwrap_or("(bind/move)").to_string(),
            target: target.to_path_buf(),
            source,
        })
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> Result<()> {
        nix::mount::umount2(target, flags).map_err(|source| HostError::Unmount {
            target: target.to_path_buf(),
            source,
        })
    }

    fn mkdir_all(&self, path: &Path) -> Result<()> {
        fs::create_dir_all(path).map_err(|source| HostError::Mkdir {
            path: path.to_path_buf(),
            source,
        })
    }

    fn remove_dir(&self, path: &Path) -> Result<()> {
        fs::remove_dir(path).map_err(|source| HostError::Rmdir {
            path: path.to_path_buf(),
            source,
        })
    }

    fn read_to_string(&self, path: &Path) -> Result<String> {
        fs::read_to_string(path).map_err(|source| HostError::Read {
            path: path.to_path_buf(),
            source,
        })
    }

    fn write(&self, path: &Path, contents: &str) -> Result<()> {
        fs::write(path, contents).map_err(|source| HostError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn load_module(&self, name: &str, path: &Path, params: &str) -> Result<()> {
        let err = |source| HostError::LoadModule {
            name: name.to_string(),
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path)
            .map_err(|e| err(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
        let params = CString::new(params).map_err(|_| err(nix::Error::EINVAL))?;
        match nix::kmod::finit_module(&file, &params, nix::kmod::ModuleInitFlags::empty()) {
            // Loaded meanwhile (another module pulled it in, or it was asked twice).
            Ok(()) | Err(nix::Error::EEXIST) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    fn attach_loop(&self, file: &Path) -> Result<PathBuf> {
        let err = |source| HostError::Loop {
            file: file.to_path_buf(),
            source,
        };
        let io = |e: std::io::Error| err(nix::Error::from_raw(e.raw_os_error().unwrap_or(0)));
        let control = File::open("/dev/loop-control").map_err(io)?;
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
        let number = unsafe { loop_ctl_get_free(control.as_raw_fd()) }.map_err(err)?;
        let device = PathBuf::from(format!("/dev/loop{number}"));
        let backing = File::open(file).map_err(io)?;
        let loop_dev = fs::OpenOptions::new()
            .read(true)
            .open(&device)
            .map_err(io)?;
        // SAFETY: LOOP_SET_FD takes the backing file's descriptor, which outlives the call;
        // the kernel takes its own reference to the file.
        unsafe { loop_set_fd(loop_dev.as_raw_fd(), backing.as_raw_fd()) }.map_err(err)?;
        Ok(device)
    }

    fn switch_root(&self, new_root: &Path) -> Result<()> {
        let err = |step, source| HostError::SwitchRoot {
            new_root: new_root.to_path_buf(),
            step,
            source,
        };
        // runc cannot pivot_root out of an initramfs, and neither can we: the initramfs is
        // the rootfs and cannot be unmounted. The classic switch_root moves the new root
        // over / and chroots into it.
        nix::unistd::chdir(new_root).map_err(|e| err("chdir", e))?;
        nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(|e| err("move", e))?;
        nix::unistd::chroot(".").map_err(|e| err("chroot", e))?;
        nix::unistd::chdir("/").map_err(|e| err("chdir /", e))
    }

    fn set_hostname(&self, name: &str) -> Result<()> {
        nix::unistd::sethostname(name).map_err(|source| HostError::Hostname {
            name: name.to_string(),
            source,
        })
    }

    fn find_labelled(&self, label: &str) -> Vec<PathBuf> {
        crate::label::find(Path::new("/sys/class/block"), Path::new("/dev"), &[label])
            .into_iter()
            .map(|(device, _)| device)
            .collect()
    }

    fn read_head(&self, path: &Path, len: usize) -> Result<Vec<u8>> {
        use std::io::Read;
        let mut head = Vec::with_capacity(len);
        File::open(path)
            .and_then(|f| f.take(len as u64).read_to_end(&mut head))
            .map_err(|source| HostError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(head)
    }

    fn read_tail(&self, path: &Path, len: usize) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let err = |source| HostError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut f = File::open(path).map_err(err)?;
        // Seeking to the end gives a block device's size, as it does a file's.
        let size = f.seek(SeekFrom::End(0)).map_err(err)?;
        f.seek(SeekFrom::Start(size.saturating_sub(len as u64)))
            .map_err(err)?;
        let mut tail = Vec::with_capacity(len);
        f.take(len as u64).read_to_end(&mut tail).map_err(err)?;
        Ok(tail)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        crate::command::run(program, args)
    }

    fn output(&self, program: &str, args: &[&str], limit: std::time::Duration) -> Result<String> {
        crate::command::run_output(program, args, limit)
    }

    fn grow_partition(&self, partition: &Path) -> Result<Option<u64>> {
        crate::grow::grow(partition)
    }

    fn nvme_present(&self) -> bool {
        fs::read_dir("/sys/class/nvme")
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false)
    }

    fn sleep(&self, duration: std::time::Duration) {
        std::thread::sleep(duration)
    }
}

#[cfg(any(test, feature = "fake"))]
pub mod fake {
    //! A fake that records every call as a typed value and can be told to fail calls.

    use super::*;
    use std::cell::RefCell;
    use std::collections::{BTreeMap, BTreeSet};

    /// One recorded system call.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Call {
        Mount {
            source: Option<String>,
            target: PathBuf,
            fstype: Option<String>,
            flags: MsFlags,
            data: Option<String>,
        },
        Umount(PathBuf),
        Mkdir(PathBuf),
        Rmdir(PathBuf),
        Write(PathBuf, String),
        LoadModule(String, PathBuf),
        AttachLoop(PathBuf),
        SwitchRoot(PathBuf),
        SetHostname(String),
        Run(String),
        Grow(PathBuf),
    }

    /// Records calls; serves files from a map; fails calls whose target is listed.
    #[derive(Default)]
    pub struct FakeSys {
        pub calls: RefCell<Vec<Call>>,
        pub files: RefCell<BTreeMap<PathBuf, String>>,
        pub fail_targets: RefCell<BTreeSet<PathBuf>>,
        /// Mount points `umount` finds gone already (EINVAL: not a mount point).
        pub gone_targets: RefCell<BTreeSet<PathBuf>>,
        /// Devices `find_labelled` reports, by label.
        pub labelled: RefCell<BTreeMap<String, Vec<PathBuf>>>,
        /// What `grow_partition` answers.
        pub grown: Option<u64>,
        pub nvme: bool,
        /// What `output` prints, by program; a program not here is missing.
        pub outputs: RefCell<BTreeMap<String, String>>,
    }

    impl FakeSys {
        pub fn with_file(self, path: &str, contents: &str) -> Self {
            self.files
                .borrow_mut()
                .insert(PathBuf::from(path), contents.to_string());
            self
        }
        pub fn failing(self, target: &str) -> Self {
            self.fail_targets.borrow_mut().insert(PathBuf::from(target));
            self
        }
        /// `target` is no longer a mount point when `umount` comes to it.
        pub fn gone(self, target: &str) -> Self {
            self.gone_targets.borrow_mut().insert(PathBuf::from(target));
            self
        }
        pub fn with_label(self, label: &str, device: &str) -> Self {
            self.labelled
                .borrow_mut()
                .entry(label.to_string())
                .or_default()
                .push(PathBuf::from(device));
            self
        }
        pub fn with_output(self, program: &str, stdout: &str) -> Self {
            self.outputs
                .borrow_mut()
                .insert(program.to_string(), stdout.to_string());
            self
        }
        pub fn calls(&self) -> Vec<Call> {
            self.calls.borrow().clone()
        }
        fn record(&self, call: Call, target: &Path) -> Result<()> {
            self.calls.borrow_mut().push(call);
            if self.fail_targets.borrow().contains(target) {
                return Err(HostError::Mount {
                    fstype: "fake".into(),
                    target: target.to_path_buf(),
                    source: nix::Error::EIO,
                });
            }
            Ok(())
        }
    }

    impl Sys for FakeSys {
        fn mount(
            &self,
            source: Option<&str>,
            target: &Path,
            fstype: Option<&str>,
            flags: MsFlags,
            data: Option<&str>,
        ) -> Result<()> {
            let call = Call::Mount {
                source: source.map(str::to_string),
                target: target.to_path_buf(),
                fstype: fstype.map(str::to_string),
                flags,
                data: data.map(str::to_string),
            };
            self.record(call, target)
        }
        fn umount(&self, target: &Path, _flags: MntFlags) -> Result<()> {
            if self.gone_targets.borrow().contains(target) {
                self.calls
                    .borrow_mut()
                    .push(Call::Umount(target.to_path_buf()));
                return Err(HostError::Unmount {
                    target: target.to_path_buf(),
                    source: nix::Error::EINVAL,
                });
            }
            self.record(Call::Umount(target.to_path_buf()), target)
        }
        fn mkdir_all(&self, path: &Path) -> Result<()> {
            self.record(Call::Mkdir(path.to_path_buf()), path)
        }
        fn remove_dir(&self, path: &Path) -> Result<()> {
            self.record(Call::Rmdir(path.to_path_buf()), path)
        }
        fn read_to_string(&self, path: &Path) -> Result<String> {
            self.files
                .borrow()
                .get(path)
                .cloned()
                .ok_or_else(|| HostError::Read {
                    path: path.to_path_buf(),
                    source: std::io::ErrorKind::NotFound.into(),
                })
        }
        fn write(&self, path: &Path, contents: &str) -> Result<()> {
            self.files
                .borrow_mut()
                .insert(path.to_path_buf(), contents.to_string());
            self.record(Call::Write(path.to_path_buf(), contents.to_string()), path)
        }
        fn exists(&self, path: &Path) -> bool {
            self.files.borrow().contains_key(path)
        }
        fn load_module(&self, name: &str, path: &Path, params: &str) -> Result<()> {
            let name = if params.is_empty() {
                name.to_string()
            } else {
                format!("{name} {params}")
            };
            self.record(Call::LoadModule(name, path.to_path_buf()), path)
        }
        fn attach_loop(&self, file: &Path) -> Result<PathBuf> {
            self.record(Call::AttachLoop(file.to_path_buf()), file)?;
            Ok(PathBuf::from("/dev/loop0"))
        }
        fn switch_root(&self, new_root: &Path) -> Result<()> {
            self.record(Call::SwitchRoot(new_root.to_path_buf()), new_root)
        }
        fn set_hostname(&self, name: &str) -> Result<()> {
            self.record(Call::SetHostname(name.to_string()), Path::new(name))
        }
        fn find_labelled(&self, label: &str) -> Vec<PathBuf> {
            self.labelled
                .borrow()
                .get(label)
                .cloned()
                .unwrap_or_default()
        }
        fn read_head(&self, path: &Path, len: usize) -> Result<Vec<u8>> {
            let mut bytes = self.read_to_string(path)?.into_bytes();
            bytes.truncate(len);
            Ok(bytes)
        }
        fn read_tail(&self, path: &Path, len: usize) -> Result<Vec<u8>> {
            let bytes = self.read_to_string(path)?.into_bytes();
            Ok(bytes[bytes.len().saturating_sub(len)..].to_vec())
        }
        fn run(&self, program: &str, args: &[&str]) -> Result<()> {
            let line = std::iter::once(program)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" ");
            self.record(Call::Run(line), Path::new(program))
        }
        fn output(
            &self,
            program: &str,
            args: &[&str],
            _limit: std::time::Duration,
        ) -> Result<String> {
            self.run(program, args)?;
            self.outputs
                .borrow()
                .get(program)
                .cloned()
                .ok_or_else(|| HostError::ProgramMissing {
                    program: program.to_string(),
                })
        }
        fn grow_partition(&self, partition: &Path) -> Result<Option<u64>> {
            self.record(Call::Grow(partition.to_path_buf()), partition)?;
            Ok(self.grown)
        }
        fn nvme_present(&self) -> bool {
            self.nvme
        }
        fn sleep(&self, _duration: std::time::Duration) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_tail_read_the_two_ends_of_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        let bytes: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        assert_eq!(Linux.read_head(&path, 100).expect("head"), bytes[..100]);
        assert_eq!(Linux.read_tail(&path, 100).expect("tail"), bytes[2900..]);
        assert_eq!(
            Linux.read_tail(&path, 10_000).expect("all"),
            bytes,
            "a shorter file is read whole"
        );
    }
}
