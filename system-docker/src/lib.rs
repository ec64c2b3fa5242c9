//! # corral-system-docker: the manager
//!
//! PID 1 starts `corral-manager`. It runs Debian's dockerd as the **system engine**
//! (socket `/run/system-docker.sock`, data root `/var/lib/system-docker`, exec root
//! `/run/system-docker`, `--bridge=none --iptables=false`), waits for `/_ping` through
//! bollard, logs `system engine ready` with the seconds since boot, restarts the engine
//! with a backoff if it dies, and stops it cleanly when PID 1 sends SIGTERM.
//!
//! - **Owns:** the system engine process, `/run/system-docker.sock`,
//!   `/var/lib/system-docker`, `/run/system-docker`, `/var/log/system-docker.log`.
//! - **Must not touch:** the user engine's state (`/var/lib/docker`,
//!   `/var/run/docker.sock`), mounts and modules (PID 1 owns them).
//! - **Talks to:** dockerd through its socket (bollard), PID 1 (it is PID 1's child and
//!   stops on SIGTERM), the kernel log.

pub mod api;
pub mod apply;
pub mod assemble;
pub mod compose;
pub mod enable;
pub mod engines;
pub mod graph;
pub mod network;
pub mod restart;
pub mod services;
pub mod supervise;
pub mod timeline;
pub mod tls;
pub mod user_engine;
pub mod watch;
