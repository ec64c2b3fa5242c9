//! `corral-manager`: started by PID 1; runs until SIGTERM.

use anyhow::Context;
use corral_init::kmsg::KmsgLogger;
use corral_system_docker::engine::EngineSpec;
use corral_system_docker::supervise::supervise;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

fn main() -> anyhow::Result<()> {
    KmsgLogger::init("corral-manager", log::LevelFilter::Info);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the manager's async runtime")?;
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let engine = tokio::spawn(supervise(EngineSpec::system(), stop_rx, None));
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        log::info!("stopping: system engine");
        let _ = stop_tx.send(true);
        engine
            .await
            .context("waiting for the system engine to stop")?;
        log::info!("stopped");
        Ok(())
    })
}
