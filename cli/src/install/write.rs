//! `corral install`'s writer: carries out corral-disk's plan ([`corral_disk::plan`]) on a
//! block device, in order: old signatures wiped, the GPT, the raw writes (GRUB's BIOS
//! sectors), then each filesystem made and filled (ESP with GRUB for UEFI and the slot
//! menu, slot A with kernel, initrd and root image, the state filesystem with the cloud-config).
//! Bytes before the partitions exist go through the disk's node; once the kernel has
//! re-read the table, each filesystem is made and filled through its own. The build
//! writes the same plan onto an image file (corral-iso's `disk`).

use super::host::{Disk, Host};
use super::InstallError;
use corral_disk::layout::{self, MIB};
use corral_disk::plan::{FileEntry, Filesystem, FsKind, Plan, Source};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A step's line, numbered.
fn step(n: usize, of: usize, what: &str) {
    eprintln!("[{n}/{of}] {what}");
}

fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> InstallError + 'a {
    move |source| InstallError::io(what, path, source)
}

fn write_at(disk: &mut File, node: &Path, offset: u64, bytes: &[u8]) -> Result<(), InstallError> {
    disk.seek(SeekFrom::Start(offset))
        .and_then(|_| disk.write_all(bytes))
        .map_err(io_err("writing", node))
}

/// What a filesystem's step says.
fn describe(fs: &Filesystem) -> String {
    let what = match layout::PLAN.get(fs.number.wrapping_sub(1)) {
        Some(s) if *s == layout::EFI => "EFI system partition: GRUB for UEFI and the boot menu",
        Some(s) if *s == layout::SLOT_A => "boot slot A: the kernel, the initrd and the root image",
        Some(s) if *s == layout::STATE => "state partition, with the cloud-config",
        _ => "partition",
    };
    let kind = match fs.kind {
        FsKind::Fat16 => "FAT16",
        FsKind::Ext4 => "ext4",
    };
    format!("{what} ({kind} {})", fs.label)
}

/// Writes `plan` onto `disk`; `work` holds the mount points.
pub fn write(host: &dyn Host, disk: &Disk, plan: &Plan, work: &Path) -> Result<(), InstallError> {
    let node = &disk.node;
    let steps = 2 + plan.filesystems.len();
    // O_EXCL on a block device: the kernel refuses it (EBUSY) while anything holds the
    // disk (a mounted partition, an md or LVM member, another exclusive opener), so
    // nothing in use is written over even if it appeared after the checks.
    let mut dev = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(node)
        .map_err(|source| match source.raw_os_error() {
            Some(nix::libc::EBUSY) => InstallError::InUse {
                path: node.clone(),
                what: "the kernel says another program holds it".into(),
            },
            _ => InstallError::io("opening", node, source),
        })?;

    step(
        1,
        steps,
        "wiping the old partition table and filesystem signatures",
    );
    // The disk's ends and the start of every partition: what was there before must not
    // read as a table or a filesystem. This blanks the plan's empty partitions too.
    let zeros = vec![0u8; MIB as usize];
    write_at(&mut dev, node, 0, &zeros)?;
    write_at(&mut dev, node, disk.bytes - MIB, &zeros)?;
    for p in &plan.table.partitions {
        let len = p.bytes().min(MIB) as usize;
        write_at(&mut dev, node, p.offset(), &zeros[..len])?;
    }

    step(
        2,
        steps,
        "writing the partition table and GRUB's BIOS boot code",
    );
    plan.table.write(&mut dev).map_err(InstallError::Disk)?;
    for raw in &plan.raw {
        write_at(&mut dev, node, raw.offset, &raw.bytes)?;
    }
    dev.sync_all().map_err(io_err("flushing", node))?;
    drop(dev);
    host.reread_partitions(node)
        .map_err(io_err("re-reading the partition table of", node))?;

    for (i, fs) in plan.filesystems.iter().enumerate() {
        step(3 + i, steps, &describe(fs));
        let device = host
            .partition_node(disk, fs.number)
            .map_err(io_err("finding the partitions of", node))?;
        let (program, args): (&str, &[&str]) = match fs.kind {
            FsKind::Fat16 => ("mkfs.vfat", &["-F", "16", "-n"]),
            FsKind::Ext4 => ("mkfs.ext4", &["-q", "-F", "-L"]),
        };
        let mut args = args.to_vec();
        args.push(fs.label);
        mkfs(host, program, &args, &device)?;
        let fstype = match fs.kind {
            FsKind::Fat16 => "vfat",
            FsKind::Ext4 => "ext4",
        };
        filled(host, &device, fstype, work, |root| {
            put_files(root, &fs.files)
        })?;
    }
    host.sync();
    Ok(())
}

/// Puts a filesystem's files under `root`, with one progress bar over the bytes of the
/// files copied; private files 0600 in 0700 folders, written atomically.
fn put_files(root: &Path, files: &[FileEntry]) -> Result<(), InstallError> {
    let total = files
        .iter()
        .map(|f| match &f.source {
            Source::File(p) => fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Source::Bytes(b) => b.len() as u64,
        })
        .sum();
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "    {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} {elapsed}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    for f in files {
        let to = root.join(&f.path);
        if let Some(dir) = to.parent() {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
            if f.private {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                    .map_err(io_err("setting the mode of", dir))?;
            }
        }
        match &f.source {
            Source::File(from) => copy(from, &to, &bar)?,
            Source::Bytes(bytes) if f.private => {
                corral_config::store::write_private(&to, bytes).map_err(io_err("writing", &to))?;
                bar.inc(bytes.len() as u64);
            }
            Source::Bytes(bytes) => {
                fs::write(&to, bytes).map_err(io_err("writing", &to))?;
                bar.inc(bytes.len() as u64);
            }
        }
    }
    bar.finish_and_clear();
    Ok(())
}

fn mkfs(host: &dyn Host, program: &str, args: &[&str], device: &Path) -> Result<(), InstallError> {
    let device_arg = device.display().to_string();
    let mut all = args.to_vec();
    all.push(&device_arg);
    host.run(program, &all)
        .map_err(io_err("making a filesystem on", device))
}

/// Mounts `device` read-write, runs `fill` on the mount point, and unmounts it whatever
/// happened.
fn filled(
    host: &dyn Host,
    device: &Path,
    fstype: &str,
    work: &Path,
    fill: impl FnOnce(&Path) -> Result<(), InstallError>,
) -> Result<(), InstallError> {
    mounted(host, device, fstype, false, work, fill).map(|_| ())
}

/// Mounts `device` under `work`, runs `f` on the mount point, and unmounts it whatever
/// happened.
pub fn mounted<T>(
    host: &dyn Host,
    device: &Path,
    fstype: &str,
    read_only: bool,
    work: &Path,
    f: impl FnOnce(&Path) -> Result<T, InstallError>,
) -> Result<T, InstallError> {
    let dir = mount_point(work, device);
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    host.mount(device, &dir, fstype, read_only)
        .map_err(io_err("mounting", device))?;
    let out = f(&dir);
    let unmounted = host.unmount(&dir).map_err(io_err("unmounting", &dir));
    let _ = fs::remove_dir(&dir);
    out.and_then(|v| unmounted.map(|_| v))
}

/// Where `device` is mounted under `work`.
pub fn mount_point(work: &Path, device: &Path) -> PathBuf {
    let name = device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    work.join(format!("mnt-{name}"))
}

/// Copies a file, advancing `bar` by the bytes copied, and flushes it to the disk.
fn copy(from: &Path, to: &Path, bar: &ProgressBar) -> Result<(), InstallError> {
    let src = File::open(from).map_err(io_err("reading", from))?;
    let mut dst = File::create(to).map_err(io_err("creating", to))?;
    std::io::copy(&mut bar.wrap_read(src), &mut dst).map_err(io_err("copying to", to))?;
    dst.sync_all().map_err(io_err("flushing", to))
}
