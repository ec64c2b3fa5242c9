//! # corral-manager
//!
//! `corral-manager`, which PID 1 starts: runs Debian's dockerd as the system engine, waits
//! for its API, logs `system engine ready`, restarts it when it dies and stops it on
//! SIGTERM. A manager that PID 1 starts again after the last one was killed takes over
//! the engine that one left running (with its services) instead of starting a second,
//! and does not fetch or apply the configuration again that boot. After every engine start it loads the system images (corral-dockerd's `images`). Once
//! per boot it then brings the network service up, fetches user-data from the datasources,
//! saves or rejects it and applies the configuration on the host (`src/configure.rs`): hostname and
//! `/etc/hosts`, sysctl, modules, mounts, bootcmd (`src/apply.rs`), and the network plan
//! handed to the network service (`src/network.rs`); the report goes to the console and
//! `/var/log/cloud-config.log`. It brings up the services put together from the built-in
//! [`os-config.yml`](os-config.yml), the users' files in `/var/lib/corral/conf/services/`,
//! `services_include`, `corral.services` and `#compose` user-data, with
//! `corral.environment` (`src/assemble.rs`), attaches `write_files` entries with
//! `container:` to their service (copied into its container before its command first
//! runs), and brings them up (corral-compose parses, merges and orders,
//! `src/services.rs` reconciles; an image the machine lacks that is not one of Corral's
//! own is pulled through the system engine first, `src/pull.rs`), and watches the engine's events to log every
//! transition and restart exited services per their `restart:` with backoff
//! (`src/service_watch.rs`, which opens the event stream again when it fails while the
//! engine runs; decisions in `src/restart_policy.rs`). The `docker` service (the user engine)
//! gets its command, image, `daemon.json` and TLS files from `corral.docker` through
//! `corral-user-docker` before it starts; once its socket answers, the preloaded archives
//! are loaded and the swarm `corral.swarm` names is started or joined in the background
//! (`src/user_engine.rs`; the swarm work is corral-user-docker's `swarm::apply`; the service's definition and the engine's socket are
//! corral-user-docker's). At shutdown it ends the services (the console last: each
//! one's stop signal and a wait for its process, not for the engine's teardown of its
//! container; the `docker` service gets its workloads' time too, as its dockerd stops
//! them, or with `live-restore` they are stopped through its API first), then kills the
//! engine when every service's process is gone (stops it otherwise), all within the
//! time PID 1 gives it (`src/shutdown.rs` shortens each phase to fit). When the console has
//! not run for `corral.rescue_after` seconds (engine dead, image broken, a bad console
//! override), it runs the console's own `corral console-init` on the host, chrooted
//! into the console image's files read from the store on the root's squashfs, until
//! the console runs again (`src/rescue.rs`); when that cannot start either and the
//! kernel command line says `corral.recovery=shell`, a root shell on `/dev/console`
//! (`src/emergency.rs`). `corral-manager status`
//! asks the engine (through its API) for its version, storage driver, images and
//! containers. It answers the `corral` command on `/run/corral/api.sock` (root only; one
//! JSON request and answer per connection, a stream of answers for `logs --follow`;
//! protocol in `corral-api`): service list, start, stop, restart and logs through the
//! system engine's API, versions, and the boot report from its timeline (`src/api.rs`,
//! `src/timeline.rs`, which also reads PID 1's steps from `/run/corral/init-steps`);
//! service enable, disable and up, kept as `corral.services_include` in the saved
//! configuration through corral-config's `edit` (`src/enable.rs`; the built-in catalogue
//! of optional services is `catalogue/`); engine list and switch by engine name
//! (`docker-26.1`, the image label `io.corral.engine`) or image, the root's binaries an
//! engine image lists (`io.corral.engine.host-binaries`) bound read-only into its
//! container, with a trial of the new engine's dockerd first and the old engine put back
//! if the new one exits or does not answer (`src/engine_images.rs` finds and checks
//! engines, `src/engine_switch.rs` switches); console list, switch and enable: the
//! default console, a console image by name (label `io.corral.console`) or a user's
//! image, loaded from an archive under `/var/lib/corral/consoles/` and kept there, or a
//! console a repository offers (its image pulled), its `/etc`, `/usr`, `/var` and
//! `/root` in volumes, switched back when it does not stay up (`src/consoles.rs`); tls generate, a new CA and certificates for the user engine
//! through corral-user-docker's `tls` (`src/tls.rs`). On a machine with boot slots it
//! records, once per boot, a trial that ended without being kept (a rollback, with its
//! reason) and marks a trial boot good once the machine is healthy, or cancels it and
//! reboots into the good slot (`src/trial.rs`; the decisions are corral-disk's
//! `bootenv`, the files corral-update's `bootstate`; docs/upgrades.md). See
//! [docs/services.md](../docs/services.md) and [docs/cli.md](../docs/cli.md).
//!
//! How the code is cut: `src/main.rs` only starts the runtime; `src/lifecycle.rs` is the
//! manager's life (seed, engine, the event loop, the shutdown order); `src/system_engine.rs`
//! keeps the system engine running (the process itself is corral-dockerd's);
//! `src/startup.rs` is what follows each engine start; `src/shutdown.rs` the way down
//! and its time budget, `src/ending.rs` the services ended on it; `src/configure.rs`
//! applies the configuration once per boot; `src/containers.rs` finds and stops the services'
//! containers; `src/status.rs` is `corral-manager status`. No module imports one that
//! imports it back.
//!
//! - **Owns:** the system engine's processes (its containerd, started first, and
//!   dockerd) and its containers (the system services), their
//!   restarts, `/run/system-docker.sock`, `/run/corral/api.sock`,
//!   `/var/lib/system-docker`, `/run/system-docker`, `/var/log/system-docker.log`; what
//!   cloud-config applies on the host after PID 1's boot: the configured hostname and its
//!   `/etc/hosts` line, sysctls, the modules `corral.modules`, the user engine and the
//!   network service's bridges, bonds and VLANs need, the IPv6 `accept_ra` settings
//!   (`/proc/sys/net/ipv6/conf/*/accept_ra`) the network service cannot write,
//!   the `mounts` entries, `bootcmd`, `/var/log/cloud-config.log`; the user engine's
//!   `daemon.json` and TLS files under `/run/corral/docker` and `/var/lib/corral/tls`;
//!   consoles' image archives under `/var/lib/corral/consoles`;
//!   at boot, GRUB's environment block on the ESP (mounted for a moment at
//!   `/run/corral/esp`) to commit, cancel or record a trial, and the slots' record
//!   `/var/lib/corral/upgrade/slots.json`.
//! - **Must not touch:** the user engine's data (`/var/lib/docker`); it reaches that engine
//!   only through `/var/run/docker.sock` (readiness, preload, whether it runs with
//!   `live-restore`, and then stopping its workloads at shutdown and before its service
//!   stops; otherwise its dockerd stops them at its SIGTERM);
//!   PID 1's early mounts, the root and the state partition; the boot slots' partitions
//!   (`corral os upgrade` writes them); the console's files
//!   (`write_files` without `container:` and `runcmd` are the console's); the saved
//!   configuration other than through corral-config's `edit`.
//! - **Talks to:** dockerd through its socket (bollard, tokio; the processes, dockerd's
//!   and its containerd's, through corral-dockerd); PID 1 (its parent); the kernel (modules, mounts, sysctls, the
//!   hostname, through corral-host); the kernel log; the datasources and RancherOS-style
//!   service repositories over http(s), through corral-config (`src/repositories.rs`
//!   keeps what it fetches from those in `services-available`, and reads their consoles
//!   and engines); image registries, only through the system engine's pulls.

pub mod api;
pub mod apply;
pub mod assemble;
pub mod configure;
pub mod consoles;
pub mod containers;
pub mod emergency;
pub mod enable;
pub mod ending;
pub mod engine_images;
pub mod engine_switch;
pub mod error;
pub mod lifecycle;
pub mod network;
pub mod pull;
pub mod repositories;
pub mod rescue;
pub mod restart_policy;
pub mod service_watch;
pub mod services;
pub mod shutdown;
pub mod startup;
pub mod status;
pub mod system_engine;
pub mod system_settings;
pub mod timeline;
pub mod tls;
pub mod trial;
pub mod user_engine;
