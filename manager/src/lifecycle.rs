//! The manager's life: seed the system engine's image store, start the engine and keep
//! it running (`supervise`), run what follows each engine start (`startup`), and at
//! SIGTERM stop the workloads, then the services (the console last), then the engine.

use crate::error::{ManagerError, Result};
use crate::system_engine::{seed_store, supervise, EngineEvent};
use crate::timeline::{self, ENGINE, ENGINE_API, ENGINE_CONTAINERD, ROOT_STAGE};
use crate::{shutdown, startup};
use corral_config::store::Effective;
use corral_dockerd::engine::EngineSpec;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// The manager proper, as PID 1 runs it, until SIGTERM or SIGINT; `manager_started` is
/// when it started, in seconds since boot.
pub async fn run(manager_started: f64) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).map_err(ManagerError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ManagerError::Signals)?;
    let (stop_tx, stop_rx) = watch::channel(None);
    // Ends the service watchers at shutdown, before the services are stopped.
    let (quiet_tx, quiet_rx) = watch::channel(false);
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    // `corral.system_docker` and the proxies, from the configuration saved so far.
    let plain = EngineSpec::system();
    let (spec, warnings) = crate::system_settings::apply(
        plain.clone(),
        &crate::configure::current_config().config.corral,
    );
    for w in warnings {
        log::warn!("system engine: {w}");
    }
    // Without the configuration's settings, should they keep the engine from starting.
    let plain = (spec.extra_args != plain.extra_args || spec.environment != plain.environment)
        .then_some(plain);
    seed_store(&spec).await;
    // The boot report's parts of the engine's start: its containerd, then dockerd.
    tokio::spawn(timeline::when_socket(
        ENGINE_CONTAINERD,
        spec.containerd().socket,
        manager_started,
        ROOT_STAGE.into(),
        std::time::Duration::from_secs(300),
    ));
    let engine = tokio::spawn(supervise(spec.clone(), plain, stop_rx, Some(events_tx)));
    // Boot slots: a rollback recorded, a trial boot marked good once healthy.
    tokio::spawn(crate::trial::on_boot(spec.clone()));
    // PID 1's options: when to rescue the console, and the time PID 1 gives at shutdown.
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let boot = corral_host::cmdline::BootOptions::parse(&cmdline);
    if boot.rescue_after > 0 {
        tokio::spawn(crate::rescue::watch(
            spec.clone(),
            quiet_rx.clone(),
            std::time::Duration::from_secs(boot.rescue_after),
            boot.recovery_shell_asked,
        ));
    }
    let mut services = None;
    // The configuration, fetched and applied once per boot (not again when the
    // engine restarts).
    let mut configured: Option<Effective> = None;
    // Open while the engine that reported ready last runs: its service watcher ends
    // when this is dropped (the engine exited, or started again).
    let mut engine_run: Option<watch::Sender<()>> = None;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(event) = events.recv() => {
                if let EngineEvent::Exited { .. } = event {
                    engine_run = None;
                }
                if let EngineEvent::Ready { .. } = event {
                    let (run_tx, run_rx) = watch::channel(());
                    engine_run = Some(run_tx);
                    let now = corral_host::since_boot();
                    timeline::record(ENGINE, manager_started, now, Some(ROOT_STAGE));
                    timeline::engine_parts(ENGINE_CONTAINERD, ENGINE_API, now);
                    // Every start of the engine (the first, or after a crash) gets
                    // the images and the services; both skip what is already there.
                    // A stop request does not wait for the start-up to finish: it
                    // is dropped where it stands (the engine stops what it started).
                    let starting = startup::on_engine_ready(&spec, quiet_rx.clone(), run_rx, &mut configured);
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
    shutdown::SHUTTING_DOWN.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = quiet_tx.send(true);
    drop(engine_run);
    let wanted = configured
        .as_ref()
        .and_then(|c| c.config.corral.shutdown_timeout)
        .map(|s| std::time::Duration::from_secs(s.into()))
        .unwrap_or(crate::service_watch::STOP_TIMEOUT);
    let pid1 = std::time::Duration::from_secs(boot.shutdown_timeout);
    let budget = shutdown::budget(wanted, pid1);
    if budget.shortened {
        log::warn!(
            "shutdown: containers get {:.1}s each, not the configuration's {}s, and the \
             system engine {:.1}s: PID 1 allows {}s in all (corral.shutdown_timeout on the \
             kernel command line)",
            budget.containers.as_secs_f64(),
            wanted.as_secs(),
            budget.engine.as_secs_f64(),
            pid1.as_secs()
        );
    }
    let all_gone = match services {
        Some(file) => shutdown::stop_containers(&spec, &file, budget.containers).await,
        None => false,
    };
    if all_gone {
        // Nothing left for dockerd to stop; its teardown of the exited containers is
        // work the way down does not need (crate::ending).
        log::info!("killing: system engine (every service has exited)");
        let _ = stop_tx.send(Some(crate::system_engine::Stop::Kill));
    } else {
        log::info!("stopping: system engine");
        let _ = stop_tx.send(Some(crate::system_engine::Stop::Within(budget.engine)));
    }
    engine.await.map_err(ManagerError::EngineTask)?;
    log::info!("stopped");
    Ok(())
}
