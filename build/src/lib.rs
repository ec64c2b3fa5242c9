//! # corral-build: Debian packages in, Corral out
//!
//! Resolves Debian 13 (and, for the newest Docker, unstable) packages with the build's
//! own apt configuration (`apt::suite`: private sources, lists and an empty dpkg status
//! under the cache), fetches them into a cache checked by sha256, records suite and
//! version of each in `build/packages.lock` (and reports drift), unpacks them, assembles the merged-/usr
//! root with Corral's binaries, makes the squashfs root image and the initrd (`/init`,
//! device nodes, boot modules, root image), and calls `corral-iso` for the ISO. Every
//! stage is skipped when its inputs are unchanged.
//!
//! - **Owns:** `dist/`, `target/corral/`, the package cache (`~/.cache/corral`, or
//!   `CORRAL_CACHE`), `build/packages.lock`.
//! - **Must not touch:** the build host's apt sources and dpkg state (apt runs with a
//!   private configuration and an empty status file); nothing of it runs on a Corral
//!   machine.
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
