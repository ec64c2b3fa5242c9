//! # corral-disk: Corral's disk layout
//!
//! The partition table Corral boots from (a BIOS boot partition, an EFI system
//! partition, boot slots A and B, the state partition), written as a GUID partition
//! table on an image file or a device, read back (a table with a used slot after an
//! empty one is refused, never cut short) and grown; GRUB's BIOS boot sectors,
//! filled in the way grub-bios-setup fills them; GRUB's menu and environment block for
//! the ESP; and the one plan of what goes where on a Corral disk, which both disk
//! writers carry out: the build's on an image file (corral-iso) and `corral install`'s
//! on a block device (corral-cli).
//!
//! - **Owns:** the layout ([`layout`]), GPT encoding ([`gpt`]), GRUB boot-sector
//!   patching ([`bios`]), the ESP's `grub.cfg` and `grubenv` ([`grub`]), the boot state
//!   in `grubenv` and its transitions: which slot is good, trials, tries, rollback
//!   ([`bootenv`], pure: its callers write the result), the boot kit's
//!   file names ([`kit`]) and the disk's contents, partition by partition ([`plan`]).
//! - **Must not touch:** devices, filesystems and mounts (the writers make and fill
//!   them from the plan); GRUB's images (the build makes them with grub-mkimage).
//! - **Talks to:** whatever `Read + Write + Seek` it is handed, and the boot kit's files
//!   it reads; nothing else.
//!
//! Used by the build (the raw image), by PID 1 (growing the state partition, through
//! corral-host) and by `corral install`. No panics on what it reads: a table from a
//! disk is untrusted.

pub mod bios;
pub mod bootenv;
pub mod error;
pub mod gpt;
pub mod grub;
pub mod guid;
pub mod kit;
pub mod layout;
pub mod plan;

pub use error::DiskError;
pub use gpt::{Partition, Table};
pub use guid::Guid;
