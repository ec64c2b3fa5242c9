//! # corral-dockerd: one Docker engine and the system images it is filled with
//!
//! What the manager and the build both need to do with a dockerd: run one as a child
//! process with the system engine's flags (its own socket, data root and exec root, no
//! bridge, no iptables; `engine`), on a containerd started first and waited for as
//! long as it takes (`containerd`: its paths and configuration, which `corral-engine`
//! uses for the user engine too), or take over the pair a killed manager left running
//! (`Engine::adopt`: the pid in the spec's pid file, alive, started with that pid file),
//! wait until its API answers and stop it cleanly (dockerd, then its containerd); read
//! the system images' archives and their `index.json`, and load each into an engine
//! unless it already has that image, or stream any one archive in (`images`, also used
//! for the console switch and the user engine's preload); and the seeded image store, made at build
//! time by loading the archives into a private dockerd and installed at boot into an
//! empty data root before the engine starts (`seed`: its layers linked into the root's
//! squashfs or, without one, copied; written under temporary names and put in place,
//! `image/` last, only once whole and synced; a broken data root's
//! contents are moved aside into `.corrupt-<time>/` with `move_aside`). The manager runs the system engine
//! and loads the images with it; the build makes the seed with it; neither links the
//! other.
//!
//! - **Owns:** nothing on a machine by itself: the paths an engine uses are its
//!   caller's (`EngineSpec`); it defines where the build puts the archives
//!   (`/usr/share/corral/images`) and the seed (`/usr/share/corral/system-docker-seed`).
//! - **Must not touch:** the services, the configuration, the user engine's state.
//! - **Talks to:** dockerd and containerd (started as children; dockerd's API through
//!   bollard, containerd only through its socket's accepting; a leftover containerd is
//!   stopped before an engine restarts, and the processes of the
//!   containers it ran are killed through their cgroups' `cgroup.kill`, `leftover`),
//!   the filesystem of the data root it seeds.

pub mod containerd;
pub mod engine;
pub mod error;
pub mod images;
pub mod leftover;
pub mod seed;

pub use error::{DockerdError, Result};

/// Where the console puts the CA certificates `write_files` writes under
/// `/etc/ssl/certs/` (a tmpfs on the host, shared with the console and the user engine
/// through their `/run`), so that both engines trust a private registry's CA as
/// RancherOS's shared `/etc/ssl/certs` made them.
pub const EXTRA_CERTS_DIR: &str = "/run/corral/certs";
/// `SSL_CERT_DIR` for both engines: their own CA directory, then [`EXTRA_CERTS_DIR`]
/// (Go reads every file of each, besides its bundle).
pub const SSL_CERT_DIR: &str = "/etc/ssl/certs:/run/corral/certs";
