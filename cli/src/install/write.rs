//! The writes of `corral install`, in order: old signatures wiped, the GPT of
//! corral-disk's layout, GRUB's BIOS sectors, then the filesystems (ESP with GRUB for
//! UEFI and the slot menu, slot A with kernel and initrd, the state filesystem with the
//! cloud-config). Bytes before the partitions exist go through the disk's node; once the
//! kernel has re-read the table, each filesystem is made and filled through its own.

use super::host::{Disk, Host};
use super::InstallError;
use corral_disk::layout::{self, BIOS, EFI, MIB, SLOT_A, STATE};
use corral_disk::{bios, Table};
use corral_iso::disk::{BootKit, GRUB_DIR};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What goes onto the disk.
pub struct Payload<'a> {
    pub kit: &'a BootKit,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// The cloud-config to keep as the machine's own (`corral config set`'s layer).
    pub cloud_config: Option<&'a [u8]>,
    /// Where, under the state filesystem, the cloud-config goes.
    pub cloud_config_at: &'a Path,
    /// A scratch directory for mount points.
    pub work: &'a Path,
}

/// A step's line, numbered.
fn step(n: usize, what: &str) {
    eprintln!("[{n}/{STEPS}] {what}");
}
const STEPS: usize = 5;

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

/// Writes everything onto `disk`.
pub fn write(
    host: &dyn Host,
    disk: &Disk,
    table: &Table,
    payload: &Payload,
) -> Result<(), InstallError> {
    let node = &disk.node;
    let part = |slot: &layout::Slot| &table.partitions[layout::number(slot) - 1];
    let mut dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(node)
        .map_err(io_err("opening", node))?;

    step(
        1,
        "wiping the old partition table and filesystem signatures",
    );
    let zeros = vec![0u8; MIB as usize];
    write_at(&mut dev, node, 0, &zeros)?;
    write_at(&mut dev, node, disk.bytes - MIB, &zeros)?;
    for p in &table.partitions {
        let len = p.bytes().min(MIB) as usize;
        write_at(&mut dev, node, p.offset(), &zeros[..len])?;
    }

    step(2, "writing the partition table and GRUB's BIOS boot code");
    table.write(&mut dev).map_err(InstallError::Disk)?;
    let read = |p: &Path| fs::read(p).map_err(io_err("reading", p));
    let mut core = read(&payload.kit.core_img)?;
    bios::fit_core(&mut core, part(&BIOS)).map_err(InstallError::Disk)?;
    write_at(&mut dev, node, part(&BIOS).offset(), &core)?;
    let mut mbr = [0u8; 512];
    dev.seek(SeekFrom::Start(0))
        .and_then(|_| dev.read_exact(&mut mbr))
        .map_err(io_err("reading", node))?;
    let sector = bios::boot_sector(&read(&payload.kit.boot_img)?, &mbr, part(&BIOS).first)
        .map_err(InstallError::Disk)?;
    write_at(&mut dev, node, 0, &sector)?;
    dev.sync_all().map_err(io_err("flushing", node))?;
    drop(dev);
    host.reread_partitions(node)
        .map_err(io_err("re-reading the partition table of", node))?;
    let part_node = |slot: &layout::Slot| {
        host.partition_node(disk, layout::number(slot))
            .map_err(io_err("finding the partitions of", node))
    };

    step(3, "EFI system partition: GRUB for UEFI and the boot menu");
    let esp = part_node(&EFI)?;
    mkfs(host, "mkfs.vfat", &["-F", "16", "-n", EFI.name], &esp)?;
    filled(host, &esp, "vfat", payload.work, |root| {
        let boot = root.join("EFI/BOOT");
        let grub = root.join(GRUB_DIR);
        for d in [&boot, &grub] {
            fs::create_dir_all(d).map_err(io_err("creating", d))?;
        }
        copy(&payload.kit.efi, &boot.join("BOOTX64.EFI"), None)?;
        copy(&payload.kit.grub_cfg, &grub.join("grub.cfg"), None)?;
        copy(&payload.kit.grubenv, &grub.join("grubenv"), None)?;
        Ok(())
    })?;

    step(
        4,
        "boot slot A: the kernel and the initrd with the root image",
    );
    let slot_a = part_node(&SLOT_A)?;
    mkfs(host, "mkfs.ext4", &["-q", "-F", "-L", SLOT_A.name], &slot_a)?;
    filled(host, &slot_a, "ext4", payload.work, |root| {
        let total = [payload.kernel, payload.initrd]
            .iter()
            .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "    {bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} {elapsed}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        copy(payload.kernel, &root.join("vmlinuz"), Some(&bar))?;
        copy(payload.initrd, &root.join("initrd"), Some(&bar))?;
        bar.finish_and_clear();
        Ok(())
    })?;

    // Slot B stays empty (its first MiB wiped above) for the first upgrade.
    step(
        5,
        "state partition: ext4 CORRAL_STATE, with the cloud-config",
    );
    let state = part_node(&STATE)?;
    mkfs(host, "mkfs.ext4", &["-q", "-F", "-L", STATE.name], &state)?;
    filled(host, &state, "ext4", payload.work, |root| {
        let Some(config) = payload.cloud_config else {
            return Ok(());
        };
        let path = root.join(payload.cloud_config_at);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err("setting the mode of", dir))?;
        }
        corral_config::store::write_private(&path, config).map_err(io_err("writing", &path))
    })?;
    host.sync();
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
fn copy(from: &Path, to: &Path, bar: Option<&ProgressBar>) -> Result<(), InstallError> {
    let src = File::open(from).map_err(io_err("reading", from))?;
    let mut dst = File::create(to).map_err(io_err("creating", to))?;
    let bar = bar.cloned().unwrap_or_else(ProgressBar::hidden);
    std::io::copy(&mut bar.wrap_read(src), &mut dst).map_err(io_err("copying to", to))?;
    dst.sync_all().map_err(io_err("flushing", to))
}
