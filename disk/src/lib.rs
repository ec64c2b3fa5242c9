//! # corral-disk: Corral's disk layout
//!
//! The partition table Corral boots from (a BIOS boot partition, an EFI system
//! partition, boot slots A and B, the state partition), written as a GUID partition
//! table on an image file or a device, read back and grown; and GRUB's BIOS boot
//! sectors, filled in the way grub-bios-setup fills them.
//!
//! - **Owns:** the layout ([`layout`]), GPT encoding ([`gpt`]), GRUB boot-sector
//!   patching ([`bios`]).
//! - **Must not touch:** filesystems inside partitions, GRUB's configuration, mounting.
//! - **Talks to:** whatever `Read + Write + Seek` it is handed; nothing else.
//!
//! Used by the build (the raw image), by PID 1 (growing the state partition) and by
//! `corral install`. No panics on what it reads: a table from a disk is untrusted.

pub mod bios;
pub mod error;
pub mod gpt;
pub mod guid;
pub mod layout;

pub use error::DiskError;
pub use gpt::{Partition, Table};
pub use guid::Guid;
