//! `corral-manager`: started by PID 1; runs until SIGTERM.

use anyhow::Context;
use corral_init::kmsg::KmsgLogger;
use corral_system_docker::engine::EngineSpec;
use corral_system_docker::supervise::supervise;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => manage(),
        Some("status") => status(),
        Some(other) => anyhow::bail!(
            "unknown command {other:?}; run `corral-manager` (PID 1 does) or `corral-manager status`"
        ),
    }
}

/// `corral-manager status`: asks the system engine, through its API, what it runs.
fn status() -> anyhow::Result<()> {
    let spec = EngineSpec::system();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let docker = corral_system_docker::engine::connect(&spec)
            .await
            .with_context(|| format!("connecting to {}", spec.socket.display()))?;
        let version = docker
            .version()
            .await
            .context("asking the system engine its version")?;
        let info = docker
            .info()
            .await
            .context("asking the system engine for its info")?;
        println!(
            "system engine: docker {}, API {}, storage driver {}, {} containers, data root {}",
            version.version.unwrap_or_default(),
            version.api_version.unwrap_or_default(),
            info.driver.unwrap_or_default(),
            info.containers.unwrap_or_default(),
            info.docker_root_dir.unwrap_or_default(),
        );
        Ok(())
    })
}

/// The manager proper, as PID 1 runs it.
fn manage() -> anyhow::Result<()> {
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
