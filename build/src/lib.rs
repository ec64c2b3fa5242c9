//! # corral-build
//!
//! The build: Debian 13 packages (and unstable's newest Docker) in, `dist/` out. `corral-build dist` (what `make dist`
//! runs), `corral-build lock`, `corral-build run`, `corral-build ami`, `corral-build
//! rotate-root` (`make rotate-root`: moves `dist/update` to another signing key, see
//! docs/upgrades.md), `corral-build bench`
//! (`make bench`: `src/bench.rs` boots the floor and Corral through the harness and writes
//! `dist/bench.json` and the table in docs/benchmarks.md). What goes in the root is
//! [`rootfs.yml`](rootfs.yml); the system images are `images/<name>/image.yml`
//! ([docs/services.md](../docs/services.md)); the versions used are
//! [`packages.lock`](packages.lock). See
//! [docs/building.md](../docs/building.md).
//!
//! - **Owns:** `dist/` (the signing key and the update repository included), `target/corral/`, the package cache (`~/.cache/corral` or
//!   `$CORRAL_CACHE`), `build/packages.lock`.
//! - **Must not touch:** the build host's own dpkg state (apt runs against an empty status
//!   file). It is a host tool: nothing of it runs on a Corral machine.
//! - **Talks to:** apt-get, apt-cache, dpkg-deb, depmod, mksquashfs (each through
//!   corral-host's command runner); the `iso` crate (ISO and disk image, from corral-disk's
//!   plan); corral-dockerd (a private dockerd on the build host that makes the seeded
//!   image store); corral-user-docker (the engine images' labels); the harness (for `run`
//!   and `bench`); coldsnap or the AWS CLI (for `ami`, see docs/ec2.md). Nothing links it
//!   (`tests/tests/architecture.rs`).

pub mod ami;
pub mod apt;
pub mod baseline;
pub mod bench;
pub mod cpio;
pub mod deb;
pub mod dist;
pub mod docker_archive;
pub mod dpkg;
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
