//! Keeps an engine running: start (or take over the one a killed manager left running),
//! wait for the API, report ready, and when dockerd dies start it again after a backoff;
//! on shutdown stop it cleanly within the time it is given, or kill it when every
//! container's process has exited already ([`Stop::Kill`]).

use corral_dockerd::engine::{wait_ready, Engine, EngineSpec, CONTAINERD_STOP};
use corral_dockerd::leftover::{kill_leftover_tasks, stop_leftover_containerd, CGROUP_ROOT};
use corral_host::respawn::backoff;
use corral_host::since_boot;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long dockerd gets to answer its API after a start. Under TCG a cold dockerd takes
/// several seconds; two minutes leaves room for a slow disk without hiding a hang.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// dockerd stops its containers within 15 s on SIGTERM; give it that and some margin,
/// when PID 1's shutdown budget leaves room (`crate::shutdown::budget`).
pub const STOP_WITHIN: Duration = Duration::from_secs(25);
/// How the supervisor is asked to end the engine at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM, SIGKILL after this long: dockerd stops its containers itself.
    Within(Duration),
    /// SIGKILL at once: every container's process has exited already, and dockerd's
    /// teardown of them is work the way down does not need ([`crate::ending`]).
    Kill,
}
/// A run this long resets the restart backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What happened to the engine, for the boot report and for tests.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// The API answered; `pid` is dockerd's, `since_boot` seconds since the kernel started.
    Ready {
        pid: u32,
        version: String,
        since_boot: f64,
    },
    /// dockerd exited on its own with this code (-1: killed by a signal).
    Exited { pid: u32, code: i32 },
    /// Stopped at shutdown.
    Stopped,
}

/// Starts in a row that never answered (exited early, or silent for [`READY_WITHIN`])
/// after which the data root counts as broken: its contents are moved aside and the
/// store seeded again ([`seed_store`]). A tmpfs data root or a state disk's alike.
const BROKEN_AFTER: u32 = 3;

/// Whether `path` is on a tmpfs (lives as long as the boot).
fn in_ram(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        .unwrap_or(false)
}

/// The state partition cannot hold the system store (too small, full, failing): a tmpfs
/// is mounted over the data root, so that this boot's system engine runs from RAM with
/// its layers linked from the root image, and the services still come up. What is on
/// the state partition under it is left alone.
fn data_root_in_ram(data_root: &Path, why: &dyn std::fmt::Display) -> Result<(), String> {
    if let Err(e) = corral_dockerd::seed::discard_partial(data_root) {
        log::warn!("{e}");
    }
    nix::mount::mount(
        Some("tmpfs"),
        data_root,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0711"),
    )
    .map_err(|e| format!("mounting a tmpfs on '{}': {e}", data_root.display()))?;
    log::error!(
        "{why}: the state partition cannot hold the system engine's store; it runs from RAM \
         this boot (its images linked from the root image, nothing it writes kept). Free \
         room on the state partition or give the disk more (it grows at boot)"
    );
    Ok(())
}

/// Fills an empty data root from the seed: on the root's squashfs itself (PID 1 mounts it
/// there) its layers are linked, not copied, whether the data root is a tmpfs or on the
/// state partition. A store on the state partition linked into another root image
/// (an upgrade, a rollback: the seed mounted now has another id) or into one that is
/// not mounted (its links point at nothing) is seeded again, which takes a second. A
/// root that is not a squashfs gets a copy. When the seed cannot be written to the
/// state partition (full or failing; a copy's room is checked before it starts) the
/// data root moves to RAM for this boot ([`data_root_in_ram`]) and is seeded linked
/// there. Runs off the manager's one thread: even a linked seed writes and syncs
/// 0.3 MB of metadata.
pub async fn seed_store(spec: &EngineSpec) {
    let on_squashfs = seed_on_squashfs();
    let linked = on_squashfs.is_dir();
    let data_root = spec.data_root.clone();
    let started = Instant::now();
    let seeded = tokio::task::spawn_blocking(move || {
        if !linked {
            return corral_dockerd::seed::install(
                Path::new(corral_dockerd::seed::SEED_DIR),
                &data_root,
            );
        }
        match corral_dockerd::seed::install_linked(&on_squashfs, &data_root) {
            Err(e) if !in_ram(&data_root) => match data_root_in_ram(&data_root, &e) {
                Ok(()) => corral_dockerd::seed::install_linked(&on_squashfs, &data_root),
                Err(why) => {
                    log::error!("{why}");
                    Err(e)
                }
            },
            other => other,
        }
    })
    .await;
    match seeded {
        Ok(Ok(Some(bytes))) => log::info!(
            "image store seeded: {}{:.1} MB copied in {:.2}s",
            if linked {
                "layers linked from the root image, "
            } else {
                ""
            },
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        ),
        Ok(Ok(None)) => {}
        // The images still load from their archives, if there are any.
        Ok(Err(e)) => log::error!("{e}"),
        Err(e) => log::error!("seeding the image store: {e}"),
    }
}

/// The seed on the root's squashfs itself (PID 1 mounts it at `layout::LOWER`), where
/// its layers can be used in place; it exists only when the root is a squashfs.
pub fn seed_on_squashfs() -> std::path::PathBuf {
    std::path::Path::new(corral_host::layout::LOWER)
        .join(corral_dockerd::seed::SEED_DIR.trim_start_matches('/'))
}

/// Runs the engine until `shutdown` holds a time: the engine then gets that long to stop
/// before it is killed. Events go to `events` when given. When `spec` carries the
/// configuration's settings, `plain` is the engine without them: after
/// [`BROKEN_AFTER`] starts in a row that never answered, the engine runs as `plain`
/// (a bad flag in `corral.system_docker` never leaves the machine without its services,
/// nor costs it its store) before the data root counts as broken.
pub async fn supervise(
    spec: EngineSpec,
    plain: Option<EngineSpec>,
    mut shutdown: watch::Receiver<Option<Stop>>,
    events: Option<mpsc::UnboundedSender<EngineEvent>>,
) {
    let send = |e: EngineEvent| {
        if let Some(tx) = &events {
            let _ = tx.send(e);
        }
    };
    let (mut spec, mut plain) = (spec, plain);
    let mut failures = 0u32;
    // Starts in a row that never answered.
    let mut unanswered = 0u32;
    while shutdown.borrow().is_none() {
        if unanswered >= BROKEN_AFTER {
            if let Some(without) = plain.take() {
                log::error!(
                    "the {} engine failed {BROKEN_AFTER} starts in a row with the settings of \
                     corral.system_docker (flags {:?}); it starts with Corral's own this boot. \
                     Fix or remove those settings (see '{}')",
                    spec.name,
                    &spec.extra_args[without.extra_args.len().min(spec.extra_args.len())..],
                    spec.log_file.display()
                );
                spec = without;
                unanswered = 0;
                failures = 0;
                continue;
            }
            unanswered = 0;
            // Off the manager's one thread: removing an older copy, or the one just
            // made to give a new store room, takes seconds on a slow disk.
            // A linked seed needs 0.3 MB; only a copy may need the room of the one kept.
            let data_root = spec.data_root.clone();
            let copied = !seed_on_squashfs().is_dir();
            let moved = tokio::task::spawn_blocking(move || {
                let aside = corral_dockerd::seed::move_aside(&data_root)?;
                let seed = Path::new(corral_dockerd::seed::SEED_DIR);
                let removed = copied && corral_dockerd::seed::make_room(seed, &data_root, &aside)?;
                Ok::<_, corral_dockerd::DockerdError>((aside, removed))
            })
            .await;
            match moved {
                Ok(Ok((aside, removed))) => {
                    log::error!(
                        "the {} engine failed {BROKEN_AFTER} starts in a row; its data root's \
                         contents were moved to '{}' and the store is seeded again",
                        spec.name,
                        aside.display()
                    );
                    if removed {
                        log::warn!(
                            "the state partition has no room for a new store beside '{}': \
                             removed it",
                            aside.display()
                        );
                    }
                    seed_store(&spec).await;
                }
                // Not even that fits (a full state partition): RAM for this boot.
                Ok(Err(e)) if !in_ram(&spec.data_root) && seed_on_squashfs().is_dir() => {
                    match data_root_in_ram(&spec.data_root, &e) {
                        Ok(()) => seed_store(&spec).await,
                        Err(why) => log::error!("{e}; {why}"),
                    }
                }
                Ok(Err(e)) => log::error!("{e}"),
                Err(e) => log::error!("moving the {} engine's data root aside: {e}", spec.name),
            }
        }
        let started = Instant::now();
        let adopted = Engine::adopt(&spec);
        if let Some(engine) = &adopted {
            log::warn!(
                "{} engine (pid {}) was left running by an earlier manager; taking it over",
                spec.name,
                engine.pid().unwrap_or(0)
            );
        }
        let started_engine = match adopted {
            Some(engine) => Ok(engine),
            None => {
                // No live engine of ours holds the pid file: what is left in it (a
                // crash's pid, perhaps reused by another program since) would stop
                // dockerd starting; a containerd a killed manager started before its
                // dockerd would hold the store's lock.
                let _ = std::fs::remove_file(&spec.pidfile);
                stop_leftover_containerd(&spec).await;
                tokio::select! {
                    started = Engine::start(&spec) => started,
                    // Dropping the start kills the containerd it may have started.
                    _ = shutdown.changed() => break,
                }
            }
        };
        let mut engine = match started_engine {
            Ok(engine) => engine,
            Err(e) => {
                log::error!("{e}");
                // A containerd that exits before it answers is an engine that never
                // answered (its store may be what is broken, as when dockerd started
                // it); with the configuration's settings, a start that cannot even
                // spawn counts toward dropping them.
                let exited = matches!(e, corral_dockerd::DockerdError::ContainerdExited { .. });
                if exited || plain.is_some() {
                    unanswered = unanswered.saturating_add(1);
                }
                if wait_or_shutdown(&mut shutdown, backoff(failures)).await {
                    break;
                }
                failures = failures.saturating_add(1);
                continue;
            }
        };
        let pid = engine.pid().unwrap_or(0);
        // Set once the API has answered.
        let answered = std::sync::atomic::AtomicBool::new(false);
        let report_ready = async {
            let docker = wait_ready(&spec, READY_WITHIN).await?;
            let version = match docker.version().await {
                Ok(v) => v.version.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let at = since_boot();
            log::info!(
                "{} engine ready at {at:.2}s since boot (pid {pid}, docker {version})",
                spec.name
            );
            answered.store(true, std::sync::atomic::Ordering::Relaxed);
            send(EngineEvent::Ready {
                pid,
                version,
                since_boot: at,
            });
            // Nothing more to report; the other arms end this run.
            std::future::pending::<corral_dockerd::Result<()>>().await
        };
        let code = tokio::select! {
            silent = report_ready => {
                if let Err(e) = silent {
                    log::error!("{e}; stopping it to start it again");
                }
                engine.stop(STOP_WITHIN).await;
                -1
            }
            code = engine.wait() => {
                let when = if answered.load(std::sync::atomic::Ordering::Relaxed) { "" } else { " before it was ready" };
                log::error!("{} engine (pid {pid}) exited with code {code}{when}; see '{}'", spec.name, spec.log_file.display());
                code
            }
            _ = shutdown.changed() => {
                let stop = shutdown.borrow().unwrap_or(Stop::Within(STOP_WITHIN));
                match stop {
                    Stop::Kill => engine.kill().await,
                    Stop::Within(within) => engine.stop(within).await,
                }
                send(EngineEvent::Stopped);
                return;
            }
        };
        send(EngineEvent::Exited { pid, code });
        // Before its containers' processes are killed; a leftover one (a killed manager's)
        // is stopped before the next start.
        engine.stop_containerd(CONTAINERD_STOP).await;
        kill_leftover_tasks(&spec, Path::new(CGROUP_ROOT)).await;
        if answered.load(std::sync::atomic::Ordering::Relaxed) {
            unanswered = 0;
            if started.elapsed() >= HEALTHY_RUN {
                failures = 0;
            }
        } else {
            unanswered = unanswered.saturating_add(1);
        }
        let delay = backoff(failures);
        failures = failures.saturating_add(1);
        log::warn!(
            "restarting the {} engine in {:.1}s",
            spec.name,
            delay.as_secs_f64()
        );
        if wait_or_shutdown(&mut shutdown, delay).await {
            break;
        }
    }
    send(EngineEvent::Stopped);
}

/// Sleeps for `delay`; true if shutdown was asked meanwhile.
async fn wait_or_shutdown(shutdown: &mut watch::Receiver<Option<Stop>>, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => shutdown.borrow().is_some(),
        _ = shutdown.changed() => true,
    }
}
