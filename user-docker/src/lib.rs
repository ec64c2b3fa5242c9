//! # corral-user-docker
//!
//! The user engine, where workloads run (see [docs/user-engine.md](../docs/user-engine.md)):
//!
//! - `daemon`: `corral.docker` -> dockerd's flags and `daemon.json` (a `Plan`); what the
//!   engine cannot take is an error naming the key (what Corral fixes, a warning).
//! - `tls`: the CA, server and client certificates, made once in `/var/lib/corral/tls`
//!   (or anew on `corral tls generate`: `renew`, names checked by `check_name`), the
//!   client's copied to `/home/corral/.docker`.
//! - `preload`: archives in `/var/lib/corral/preload/docker` loaded once each.
//! - `user_json`: a user's own `/etc/docker/daemon.json` (`write_files`) merged into
//!   the plan.
//! - `service`: the `docker` service's definition filled in from `corral.docker`
//!   (dockerd's flags as its command, the image, the environment, `daemon.json`, the
//!   TLS files mounted in), over corral-compose's model; the modules it needs; how
//!   long the service must be given to stop (`stop_seconds`).
//! - `client`: the user engine through its socket: connect, wait for an answer, ask
//!   whether it has live-restore on, stop the workloads (with `live-restore` only, at
//!   shutdown and before its service stops; dockerd stops them itself otherwise).
//! - `swarm`: `corral.swarm`: the swarm the engine starts or joins once it answers
//!   (the manager runs `swarm::apply` in the background, with retries; the node's
//!   availability), the node labels added to the engine's labels (`service::plan`), its
//!   status file, and `corral swarm status|token|leave` (`swarm::cli`).
//! - `labels`: the image labels that make an image a user engine (`io.corral.image:
//!   engine`, its name, Docker version and the root's binaries it runs); the build sets
//!   them, the manager reads them.
//! - `corral-engine` (binary, with `engine_init`): the `engine` image's entrypoint;
//!   nests the container's cgroup (v2) so dockerd can delegate controllers, starts
//!   containerd as dockerd would and waits for it without dockerd's 15 s limit, then runs
//!   dockerd pointed at it, passing signals on and exiting with dockerd's code (with
//!   `live-restore`, a dockerd that exits unasked is started again in place, up to 3
//!   times in 120 s, so the workloads run on); first it deletes the runtime state an
//!   earlier run left for dead containers (`stale`).
//!
//! - **Owns:** the user engine's settings, the `docker` service's command, environment
//!   and mounts, `daemon.json` under `/run/corral/docker`, its TLS files, the preload
//!   markers, the swarm status file (`/run/corral/swarm.json`) and the swarm records
//!   (`/var/lib/corral/swarm-made`, `swarm-left`); inside the engine's container, containerd's configuration
//!   (`/var/run/docker/containerd/containerd.toml`), the containerd and dockerd
//!   processes, and the runtime state a dead run left under the exec root (`stale`:
//!   deleted with crun's or runc's own `delete` before containerd starts).
//! - **Must not touch:** the system engine or its state; the other services; the
//!   built-in service list (the manager's `os-config.yml`).
//! - **Talks to:** the user dockerd through its socket (preload, readiness, stopping
//!   workloads, the swarm; corral-dockerd connects, and the swarm's init and join are
//!   a plain JSON POST, `client::post_json`). The manager calls it
//!   (`manager/src/user_engine.rs`, which also settles the engine image against the
//!   system engine's); `corral config validate` runs its checks.

pub mod client;
pub mod daemon;
pub mod engine_init;
pub mod labels;
pub mod preload;
pub mod service;
pub mod stale;
pub mod swarm;
pub mod tls;
pub mod user_json;

/// The system service that runs the user engine (and its container's name).
pub const SERVICE: &str = "docker";
/// The engine's socket (group [`GROUP`], mode 0660), the same path on the host.
pub const SOCKET: &str = "/var/run/docker.sock";
/// The engine's data root: a tmpfs in live mode, the state partition when there is one.
pub const DATA_ROOT: &str = "/var/lib/docker";
/// The engine's exec root (its containerd's socket is `containerd/containerd.sock` in
/// it), the same path on the host.
pub const EXEC_ROOT: &str = "/var/run/docker";
/// The socket's group, and its id in the console and engine images.
pub const GROUP: &str = "docker";
pub const GROUP_ID: u32 = 233;
/// Where the manager writes `daemon.json` on the host ...
pub const CONFIG_DIR: &str = "/run/corral/docker";
/// ... and where the engine sees that folder.
pub const CONFIG_IN_ENGINE: &str = "/etc/docker";
/// The TLS files on the host (kept on the state partition) ...
pub const TLS_DIR: &str = "/var/lib/corral/tls";
/// ... and in the engine.
pub const TLS_IN_ENGINE: &str = "/etc/docker/tls";
/// dockerd's TLS port.
pub const TLS_PORT: u16 = 2376;
/// Image archives loaded into the user engine once each.
pub const PRELOAD_DIR: &str = "/var/lib/corral/preload/docker";
/// What each container gets to stop when `corral.shutdown_timeout` is unset.
pub const DEFAULT_SHUTDOWN_TIMEOUT: u32 = 10;

/// The JSON file at `path` read as a `T` from its first `max` bytes; None when it is
/// missing, unreadable or not a `T` (the swarm status file, `daemon.json`).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    max: u64,
) -> Option<T> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_string(&mut text)
        .ok()?;
    serde_json::from_str(&text).ok()
}
