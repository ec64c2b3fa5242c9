//! # corral-update: signed updates and the boot state of the slots
//!
//! Corral's updates are TUF repositories made and read with `tough` (as Bottlerocket's
//! are): the build signs a release into a repository folder and into one
//! self-contained update file ([`publish`], [`bundle`]), and rotates the keys a
//! machine trusts ([`root`]); a machine opens a repository
//! against the root metadata built into its image, lists its releases and reads a
//! release's files, every byte checked against the signed metadata before anything is
//! written ([`fetch`], [`transport`], [`release`]). It also keeps the files of the boot
//! state: GRUB's environment block on the ESP and the slots' record on the state
//! partition ([`bootstate`]). docs/upgrades.md.
//!
//! - **Owns:** the update format (target names, the `custom` fields, the update file's
//!   layout), the repository's signing and the trusted metadata's datastore, the
//!   download cache, the environment block's bytes on disk and the slots' record.
//! - **Must not touch:** devices, partitions and mounts (`corral os upgrade` mounts the
//!   ESP and writes the slot; the manager mounts the ESP at boot), the decisions about
//!   slots (corral-disk's `bootenv`), the network configuration.
//! - **Talks to:** the repository's web server (http, https with the system's CA roots,
//!   through ureq) or files it is handed; nothing else.
//!
//! Used by the build (`corral-build dist` publishes), by `corral os upgrade|list|status|
//! rollback` and by the manager (marking a trial good, recording a rollback).

pub mod bootstate;
pub mod bundle;
pub mod error;
pub mod fetch;
pub mod fsutil;
pub mod progress;
pub mod publish;
pub mod release;
pub mod root;
pub mod transport;

pub use error::{Result, UpdateError};
