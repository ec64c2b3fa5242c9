//! # corral-build: Debian packages in, Corral out
//!
//! Resolves Debian 12 packages with the host's apt (against an empty dpkg status),
//! fetches them into a cache checked by sha256, records the versions in
//! `build/packages.lock` (and reports drift), unpacks them, assembles the merged-/usr
//! root with Corral's binaries, makes the squashfs root image and the initrd (`/init`,
//! device nodes, boot modules, root image), and calls `corral-iso` for the ISO. Every
//! stage is skipped when its inputs are unchanged.
//!
//! - **Owns:** `dist/`, `target/corral/`, the package cache (`~/.cache/corral`, or
//!   `CORRAL_CACHE`), `build/packages.lock`.
//! - **Must not touch:** the build host's own dpkg state (apt runs against a private,
//!   empty status file); nothing of it runs on a Corral machine.
//! - **Talks to:** apt-get, dpkg-deb, depmod, mksquashfs (host tools from Debian), the
//!   `iso` crate, and the harness for `corral-build run`.

pub mod ami;
pub mod apt;
pub mod baseline;
pub mod bench;
pub mod cpio;
pub mod deb;
pub mod dist;
pub mod docker_archive;
pub mod error;
pub mod host;
pub mod image;
pub mod kernel;
pub mod lock;
pub mod manifest;
pub mod progress;
pub mod rootfs;
pub mod spec;
pub mod stage;
