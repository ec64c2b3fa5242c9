//! `corral-manager`: started by PID 1; runs until SIGTERM.

use anyhow::Context;
use corral_init::kmsg::KmsgLogger;
use corral_system_docker::engine::EngineSpec;
use corral_system_docker::images;
use corral_system_docker::supervise::{supervise, EngineEvent};
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
        let images = docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .context("listing the system engine's images")?;
        let mut tags: Vec<String> = images.into_iter().flat_map(|i| i.repo_tags).collect();
        tags.sort();
        println!(
            "system engine: docker {}, API {}, storage driver {}, {} containers, data root {}",
            version.version.unwrap_or_default(),
            version.api_version.unwrap_or_default(),
            info.driver.unwrap_or_default(),
            info.containers.unwrap_or_default(),
            info.docker_root_dir.unwrap_or_default(),
        );
        println!("images: {}", tags.join(" "));
        let options = bollard::query_parameters::ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let containers = docker
            .list_containers(Some(options))
            .await
            .context("listing the system engine's containers")?;
        let mut lines: Vec<String> = containers
            .into_iter()
            .map(|c| {
                let name = c
                    .names
                    .unwrap_or_default()
                    .join(",")
                    .trim_start_matches('/')
                    .to_string();
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                format!("{name}={state}")
            })
            .collect();
        lines.sort();
        println!("services: {}", lines.join(" "));
        Ok(())
    })
}

/// Where users' services files live (`*.yml`, read in name order after the built-in
/// ones); a state partition keeps them.
const SERVICES_DIR: &str = "/var/lib/corral/conf/services";

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
        // Ends the service watchers at shutdown, before the services are stopped.
        let (quiet_tx, quiet_rx) = watch::channel(false);
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let spec = EngineSpec::system();
        let started = std::time::Instant::now();
        // The seed on the root's squashfs itself (PID 1 mounts it there): its layers
        // are linked, not copied. Without it (a root that is not a squashfs), copied.
        let on_squashfs = std::path::Path::new(corral_init::root::LOWER)
            .join(corral_system_docker::seed::SEED_DIR.trim_start_matches('/'));
        let seeded = if on_squashfs.is_dir() {
            corral_system_docker::seed::install_linked(&on_squashfs, &spec.data_root)
        } else {
            corral_system_docker::seed::install(
                std::path::Path::new(corral_system_docker::seed::SEED_DIR),
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
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                Some(event) = events.recv() => {
                    if let EngineEvent::Ready { .. } = event {
                        // Every start of the engine (the first, or after a crash) gets
                        // the images and the services; both skip what is already there.
                        services = on_engine_ready(&spec, quiet_rx.clone()).await;
                    }
                }
            }
        }
        let _ = quiet_tx.send(true);
        if let Some(file) = services {
            stop_services(&spec, &file).await;
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

/// What follows each start of the system engine: load the system images, bring the
/// services up, and watch them. Returns the services it brought up.
async fn on_engine_ready(
    spec: &EngineSpec,
    quiet: watch::Receiver<bool>,
) -> Option<corral_system_docker::compose::ServicesFile> {
    let started = std::time::Instant::now();
    let docker = match corral_system_docker::engine::connect(spec).await {
        Ok(d) => d,
        Err(e) => {
            log::error!("{e}");
            return None;
        }
    };
    let dir = std::path::Path::new(images::IMAGES_DIR);
    match images::load_all(&docker, dir).await {
        Ok(results) => {
            let mut loaded = Vec::new();
            for (name, outcome) in results {
                match outcome {
                    Ok(images::Outcome::Loaded) => loaded.push(name),
                    Ok(images::Outcome::AlreadyPresent) => {}
                    Err(e) => log::error!("{e}; the other images still load"),
                }
            }
            log::info!(
                "system images loaded in {:.2}s: {} (at {:.2}s since boot)",
                started.elapsed().as_secs_f64(),
                if loaded.is_empty() {
                    "none new".to_string()
                } else {
                    loaded.join(", ")
                },
                corral_init::since_boot()
            );
        }
        Err(e) => log::error!("{e}"),
    }
    let file = services_files(std::path::Path::new(SERVICES_DIR));
    let since = corral_system_docker::watch::now_stamp();
    bring_up_services(&docker, &file).await;
    tokio::spawn(corral_system_docker::watch::run(
        docker,
        file.clone(),
        since,
        quiet,
    ));
    Some(file)
}

/// The built-in system services, with the OS version filled in.
fn builtin_services() -> String {
    include_str!("../os-config.yml").replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
}

/// The built-in services, then every `*.yml` in `dir` in name order. A file that cannot
/// be read or parsed is logged by name and left out; the others apply.
fn services_files(dir: &std::path::Path) -> corral_system_docker::compose::ServicesFile {
    use corral_system_docker::compose;
    let mut files = Vec::new();
    match compose::parse("built-in os-config.yml", &builtin_services()) {
        Ok(f) => files.push(f),
        Err(e) => log::error!("{e}"),
    }
    let mut extra: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    extra.sort();
    for path in extra {
        match compose::load(&path) {
            Ok(f) => files.push(f),
            Err(e) => log::error!("{e}; its services are left out, the others start"),
        }
    }
    compose::merge(files)
}

/// Brings the services up and logs where each one ended.
async fn bring_up_services(
    docker: &bollard::Docker,
    file: &corral_system_docker::compose::ServicesFile,
) {
    use corral_system_docker::services::Outcome;
    for w in &file.warnings {
        log::warn!("{w}");
    }
    for e in &file.errors {
        log::error!("{e}; the other services still start");
    }
    for (name, outcome) in corral_system_docker::services::up(docker, file).await {
        let at = corral_init::since_boot();
        match outcome {
            Outcome::Running { action } => {
                log::info!("service {name}: running ({action:?}) at {at:.2}s")
            }
            Outcome::Created { action } => {
                log::info!("service {name}: created ({action:?}) at {at:.2}s")
            }
            Outcome::Completed => log::info!("service {name}: completed at {at:.2}s"),
            Outcome::Failed(why) => log::error!("service {name}: failed: {why}"),
            Outcome::Skipped(why) => log::error!("service {name}: not started: {why}"),
            Outcome::Blocked(why) => log::error!("service {name}: not started: {why}"),
        }
    }
}

/// Stops the services before the engine, the console last.
async fn stop_services(spec: &EngineSpec, file: &corral_system_docker::compose::ServicesFile) {
    let Ok(docker) = corral_system_docker::engine::connect(spec).await else {
        return;
    };
    let started = std::time::Instant::now();
    let names: Vec<String> = file.services.keys().cloned().collect();
    let failed = corral_system_docker::services::stop_all(
        &docker,
        &names,
        "console",
        corral_system_docker::watch::STOP_TIMEOUT,
    )
    .await;
    for (name, why) in &failed {
        log::warn!("service {name}: stopping failed: {why}");
    }
    log::info!(
        "services stopped in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
