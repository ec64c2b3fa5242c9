//! What `corral install` decides before it writes anything: where the OS comes from (the
//! ISO this machine booted, found by its volume label) and whether the named device may
//! be written (a whole, writable disk with 512-byte sectors that holds neither the ISO
//! nor anything in use).

use super::host::{Disk, Host};
use super::InstallError;
use std::path::{Path, PathBuf};

/// The ISO's volume label (corral-iso's `LABEL`).
pub const SOURCE_LABEL: &str = "CORRAL";

/// The device holding the Corral ISO, and the disk it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The labelled device (a CD, or a disk the hybrid ISO was written to).
    pub node: PathBuf,
    /// The whole disk it belongs to, when it is one of the machine's disks.
    pub disk: Option<Disk>,
}

/// The machine's disks.
pub fn disks(host: &dyn Host) -> Result<Vec<Disk>, InstallError> {
    host.disks()
        .map_err(|source| InstallError::io("listing the disks in", "/sys/block", source))
}

/// Finds the Corral ISO among the machine's `disks`.
pub fn find_source(host: &dyn Host, disks: &[Disk]) -> Result<Source, InstallError> {
    let nodes = host.labelled(SOURCE_LABEL);
    // A whole device first: a hybrid ISO on a USB stick also shows its label through
    // partitions that start at the same place.
    let node = nodes
        .iter()
        .find(|n| disks.iter().any(|d| &d.node == *n))
        .or_else(|| nodes.first())
        .ok_or(InstallError::NoSource)?
        .clone();
    let dev = host.device_number(&node).ok().flatten();
    let disk = dev.and_then(|dev| disks.iter().find(|d| d.holds(dev)).cloned());
    Ok(Source { node, disk })
}

/// The disk at `device` among `disks`, if Corral may be installed on it.
pub fn check_target(
    host: &dyn Host,
    disks: &[Disk],
    device: &Path,
    source: &Source,
) -> Result<Disk, InstallError> {
    let dev = host
        .device_number(device)
        .map_err(|source| InstallError::io("looking at", device, source))?
        .ok_or_else(|| InstallError::NotADisk(device.to_path_buf()))?;
    let disk = disks
        .iter()
        .find(|d| d.holds(dev))
        .ok_or_else(|| InstallError::NotADisk(device.to_path_buf()))?;
    if disk.dev != dev {
        let number = disk
            .partitions
            .iter()
            .find(|p| p.dev == dev)
            .map_or(0, |p| p.number);
        return Err(InstallError::Partition {
            path: device.to_path_buf(),
            number,
            disk: disk.node.clone(),
        });
    }
    if source.disk.as_ref().is_some_and(|s| s.dev == disk.dev) {
        return Err(InstallError::SourceDisk(device.to_path_buf()));
    }
    if disk.read_only {
        return Err(InstallError::ReadOnly(device.to_path_buf()));
    }
    if let Some((_, what)) = host.busy().into_iter().find(|(d, _)| disk.holds(*d)) {
        return Err(InstallError::InUse {
            path: device.to_path_buf(),
            what,
        });
    }
    if let Some(holder) = disk.holders.first() {
        return Err(InstallError::InUse {
            path: device.to_path_buf(),
            what: format!("{holder} is built on it"),
        });
    }
    if disk.sector != corral_disk::gpt::SECTOR {
        return Err(InstallError::SectorSize {
            path: device.to_path_buf(),
            size: disk.sector,
        });
    }
    Ok(disk.clone())
}

/// One line about a disk, for the question before wiping it.
pub fn describe(disk: &Disk) -> String {
    let mut s = format!("{:.1} GiB", disk.bytes as f64 / (1u64 << 30) as f64);
    if !disk.model.is_empty() {
        s.push_str(&format!(", {}", disk.model));
    }
    if !disk.partitions.is_empty() {
        let names: Vec<String> = disk
            .partitions
            .iter()
            .map(|p| p.node.display().to_string())
            .collect();
        s.push_str(&format!(", partitions {}", names.join(" ")));
    }
    s
}

/// Whether an answer to "go on?" is yes.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
