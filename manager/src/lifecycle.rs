//! The manager's life: seed the system engine's image store, start the engine and keep
//! it running (`supervise`), run what follows each engine start (`startup`), and at
//! SIGTERM stop the workloads, then the services (the console last), then the engine.

use crate::error::{ManagerError, Result};
use crate::startup;
use crate::system_engine::{supervise, EngineEvent};
use crate::timeline::{self, ENGINE, ROOT_STAGE};
use corral_config::store::Effective;
use corral_dockerd::engine::EngineSpec;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// The manager proper, as PID 1 runs it, until SIGTERM or SIGINT; `manager_started` is
/// when it started, in seconds since boot.
pub async fn run(manager_started: f64) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).map_err(ManagerError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ManagerError::Signals)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    // Ends the service watchers at shutdown, before the services are stopped.
    let (quiet_tx, quiet_rx) = watch::channel(false);
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let spec = EngineSpec::system();
    let started = std::time::Instant::now();
    // The seed on the root's squashfs itself (PID 1 mounts it there): its layers
    // are linked, not copied. Without it (a root that is not a squashfs), copied.
    let on_squashfs = std::path::Path::new(corral_host::layout::LOWER)
        .join(corral_dockerd::seed::SEED_DIR.trim_start_matches('/'));
    // Linked layers point into this boot's root image, so they suit a data root
    // that lives as long as the boot (tmpfs). A data root on the state partition
    // outlives it (and an upgrade replaces the root image): it gets copies.
    let data_root_in_ram = nix::sys::statfs::statfs(&spec.data_root)
        .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        .unwrap_or(false);
    let seeded = if on_squashfs.is_dir() && data_root_in_ram {
        corral_dockerd::seed::install_linked(&on_squashfs, &spec.data_root)
    } else {
        corral_dockerd::seed::install(
            std::path::Path::new(corral_dockerd::seed::SEED_DIR),
            &spec.data_root,
        )
    };
    match seeded {
        Ok(Some(bytes)) => log::info!(
            "image store seeded: {:.1} MB copied in {:.2}s",
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        ),
        Ok(None) => {}
        // The images still load from their archives, if there are any.
        Err(e) => log::error!("{e}"),
    }
    let engine = tokio::spawn(supervise(spec.clone(), stop_rx, Some(events_tx)));
    let mut services = None;
    // The configuration, fetched and applied once per boot (not again when the
    // engine restarts).
    let mut configured: Option<Effective> = None;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(event) = events.recv() => {
                if let EngineEvent::Ready { .. } = event {
                    timeline::record(ENGINE, manager_started, corral_host::since_boot(), Some(ROOT_STAGE));
                    // Every start of the engine (the first, or after a crash) gets
                    // the images and the services; both skip what is already there.
                    // A stop request does not wait for the start-up to finish: it
                    // is dropped where it stands (the engine stops what it started).
                    let starting = startup::on_engine_ready(&spec, quiet_rx.clone(), &mut configured);
                    tokio::pin!(starting);
                    tokio::select! {
                        file = &mut starting => services = file,
                        _ = term.recv() => {
                            log::warn!("stop requested during start-up; start-up abandoned");
                            break;
                        }
                        _ = int.recv() => break,
                    }
                }
            }
        }
    }
    let _ = quiet_tx.send(true);
    if let Some(file) = services {
        let timeout = configured
            .as_ref()
            .and_then(|c| c.config.corral.shutdown_timeout)
            .map(|s| std::time::Duration::from_secs(s.into()))
            .unwrap_or(crate::service_watch::STOP_TIMEOUT);
        // Workloads first, while their engine still runs to stop them cleanly.
        let started = std::time::Instant::now();
        let (stopped, failures) = corral_user_docker::client::stop_workloads(timeout).await;
        for f in failures {
            log::warn!("user engine: stopping {f}");
        }
        if stopped > 0 {
            log::info!(
                "user engine: {stopped} containers stopped in {:.1}s",
                started.elapsed().as_secs_f64()
            );
        }
        startup::stop_services(&spec, &file, timeout).await;
    }
    log::info!("stopping: system engine");
    let _ = stop_tx.send(true);
    engine.await.map_err(ManagerError::EngineTask)?;
    log::info!("stopped");
    Ok(())
}
