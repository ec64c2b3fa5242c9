//! The user engine: the Docker daemon for workloads, run as the `docker` system service
//! from the `engine` image. This crate turns `corral.docker` into that dockerd's flags
//! and `daemon.json` ([`daemon`]), keeps its TLS files ([`tls`]) and loads the images
//! users preload ([`preload`]). The manager calls it; `corral-engine` (in the image)
//! starts dockerd inside the service's container.

pub mod daemon;
pub mod labels;
pub mod preload;
pub mod tls;

/// The engine's socket (group [`GROUP`], mode 0660), the same path on the host.
pub const SOCKET: &str = "/var/run/docker.sock";
/// The engine's data root: a tmpfs in live mode, the state partition when there is one.
pub const DATA_ROOT: &str = "/var/lib/docker";
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
