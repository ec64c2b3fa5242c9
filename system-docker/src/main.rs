//! `corral-manager`: started by PID 1; runs until SIGTERM.

use anyhow::Context;
use corral_config::datasource;
use corral_config::store::{self, Effective, Store};
use corral_dockerd::engine::EngineSpec;
use corral_dockerd::images;
use corral_host::kmsg::KmsgLogger;
use corral_system_docker::supervise::{supervise, EngineEvent};
use corral_system_docker::timeline::{self, CONFIGURATION, ENGINE, IMAGES, ROOT_STAGE};
use corral_system_docker::{api, apply, assemble, enable, network, user_engine};
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
        let docker = corral_dockerd::engine::connect(&spec)
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
    let manager_started = corral_host::since_boot();
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
                        let starting = on_engine_ready(&spec, quiet_rx.clone(), &mut configured);
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
                .unwrap_or(corral_system_docker::watch::STOP_TIMEOUT);
            // Workloads first, while their engine still runs to stop them cleanly.
            let started = std::time::Instant::now();
            let (stopped, failures) = user_engine::stop_workloads(timeout).await;
            for f in failures {
                log::warn!("user engine: stopping {f}");
            }
            if stopped > 0 {
                log::info!(
                    "user engine: {stopped} containers stopped in {:.1}s",
                    started.elapsed().as_secs_f64()
                );
            }
            stop_services(&spec, &file, timeout).await;
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

/// What follows each start of the system engine: load the system images; the first
/// time, bring the network up, fetch and apply the configuration; then bring the
/// services up and watch them. Returns the services it brought up.
async fn on_engine_ready(
    spec: &EngineSpec,
    quiet: watch::Receiver<bool>,
    configured: &mut Option<Effective>,
) -> Option<corral_system_docker::compose::ServicesFile> {
    let started = std::time::Instant::now();
    let images_start = corral_host::since_boot();
    let docker = match corral_dockerd::engine::connect(spec).await {
        Ok(d) => d,
        Err(e) => {
            log::error!("{e}");
            return None;
        }
    };
    if configured.is_none() {
        // Once per boot: the socket `corral` talks to.
        let path = std::path::Path::new(corral_api::SOCKET);
        match api::bind(path) {
            Ok(listener) => {
                let context = api::Context {
                    docker: docker.clone(),
                    services: enable::here(assembler(docker.clone())),
                    engine_dirs: user_engine::Dirs::host(),
                };
                tokio::spawn(api::serve(listener, std::sync::Arc::new(context)));
            }
            Err(e) => log::error!(
                "api: listening on {}: {e}; the `corral` command cannot reach the manager",
                path.display()
            ),
        }
    }
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
                corral_host::since_boot()
            );
        }
        Err(e) => log::error!("{e}"),
    }
    timeline::record(
        IMAGES,
        images_start,
        corral_host::since_boot(),
        Some(ENGINE),
    );
    let links = network::wired_links(std::path::Path::new("/sys/class/net"));
    let effective = match configured {
        Some(e) => e.clone(),
        None => {
            // The network first, as the saved configuration has it: the datasources
            // that live on the network need it.
            let saved = current_config();
            let early = services_for(&saved, &links);
            let network = corral_system_docker::compose::ServicesFile {
                services: early
                    .services
                    .into_iter()
                    .filter(|(name, _)| name == "network")
                    .collect(),
                ..Default::default()
            };
            bring_up_services(&docker, &network, IMAGES).await;
            let configuring = corral_host::since_boot();
            let e = configure(&saved).await;
            timeline::record(
                CONFIGURATION,
                configuring,
                corral_host::since_boot(),
                Some("service network"),
            );
            *configured = Some(e.clone());
            e
        }
    };
    let mut file = services_for(&effective, &links);
    prepare_user_engine(&docker, &effective, &mut file).await;
    let since = corral_system_docker::watch::now_stamp();
    let services_start = corral_host::since_boot();
    bring_up_services(&docker, &file, CONFIGURATION).await;
    if file.services.contains_key("console") {
        tokio::spawn(timeline::when_listening(
            timeline::SSHD,
            22,
            services_start,
            "service console",
            USER_ENGINE_WAIT,
        ));
    }
    if file.services.contains_key(user_engine::SERVICE) {
        tokio::spawn(user_engine::when_ready(USER_ENGINE_WAIT, services_start));
    }
    for line in container_files(&docker, &effective).await {
        log::error!("{line}");
    }
    tokio::spawn(corral_system_docker::watch::run(docker, since, quiet));
    Some(file)
}

/// The services as the saved configuration has them now, for `corral service enable`,
/// `disable` and `up`.
fn assembler(docker: bollard::Docker) -> enable::Assemble {
    Box::new(move |to_start| {
        let docker = docker.clone();
        Box::pin(async move {
            let effective = current_config();
            let links = network::wired_links(std::path::Path::new("/sys/class/net"));
            let mut file = services_for(&effective, &links);
            if to_start {
                prepare_user_engine(&docker, &effective, &mut file).await;
            }
            file
        })
    })
}

/// How long the user engine gets to answer after its service started.
const USER_ENGINE_WAIT: std::time::Duration = std::time::Duration::from_secs(180);

/// Fills in the user engine's service from `corral.docker`, and reports how.
async fn prepare_user_engine(
    docker: &bollard::Docker,
    effective: &Effective,
    file: &mut corral_system_docker::compose::ServicesFile,
) {
    let mut report = Vec::new();
    // dockerd asks for these with modprobe, which the engine image does not have.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let wanted: Vec<String> = user_engine::MODULES.iter().map(|m| m.to_string()).collect();
    let what = format!("loading {}", wanted.join(", "));
    for problem in apply::load_modules(&corral_host::sys::Linux, release.trim(), &wanted, &what) {
        report.push((log::Level::Warn, problem));
    }
    let plan = user_engine::plan(effective, &mut report);
    report.extend(user_engine::configure_service(
        file,
        &plan,
        &user_engine::Dirs::host(),
        &user_engine::server_names(),
    ));
    let default_image = format!("corral/engine:{}", env!("CARGO_PKG_VERSION"));
    for e in user_engine::settle_image(docker, file, &default_image).await {
        report.push((log::Level::Error, e));
    }
    for (level, line) in report {
        log::log!(level, "user engine: {line}");
    }
}

/// The configuration from what is saved and the kernel command line.
fn current_config() -> Effective {
    let cmdline = std::fs::read_to_string(corral_config::PROC_CMDLINE).unwrap_or_default();
    store::effective(
        &Store::new(store::CONF_DIR),
        std::path::Path::new(store::OEM_FILE),
        &cmdline,
    )
}

/// Where the boot's configuration report goes (root only).
const REPORT: &str = "/var/log/cloud-config.log";

/// How long the datasources get, all together, before the boot goes on without them.
const DATASOURCE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// How long one bootcmd may run.
const BOOTCMD_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Fetches user-data from the datasources, saves it (or rejects it, keeping the last
/// good one), and applies the result on the host: hostname, sysctl, modules, mounts,
/// bootcmd. Everything it did and every problem goes to the log and to [`REPORT`].
async fn configure(saved: &Effective) -> Effective {
    use log::Level::{Error, Info, Warn};
    let mut report: Vec<(log::Level, String)> = Vec::new();
    let corral = &saved.config.corral;
    let explicit = corral.cloud_init.datasources.is_some();
    let sources = corral
        .cloud_init
        .datasources
        .clone()
        .unwrap_or_else(corral_config::schema::default_datasources);
    let env = datasource::Env::real(
        corral.cloud_config_url.as_ref().map(|u| u.0.clone()),
        explicit,
    );
    let names: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    let started = std::time::Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        datasource::first_answer(&sources, &env, DATASOURCE_DEADLINE)
    })
    .await
    .unwrap_or_default();
    for f in &outcome.failures {
        report.push((Warn, format!("datasource: {f}")));
    }
    let store = Store::new(store::CONF_DIR);
    match &outcome.fetched {
        Some(fetched) => {
            report.push((
                Info,
                format!(
                    "user-data from {} ({} bytes) in {:.1}s",
                    fetched.source,
                    fetched.user_data.len(),
                    started.elapsed().as_secs_f64()
                ),
            ));
            match store.save(fetched) {
                // Its warnings come with the merged configuration's, below.
                Ok(store::Verdict::Accepted { .. }) => {}
                Ok(store::Verdict::Rejected(e)) => report.push((
                    Error,
                    format!(
                        "{e}; this user-data is rejected whole and the machine boots with \
                         the last good configuration (see `corral config validate`)"
                    ),
                )),
                Err(e) => report.push((
                    Error,
                    format!("saving the user-data in {}: {e}", store.dir.display()),
                )),
            }
        }
        None => report.push((
            Info,
            format!(
                "no datasource had user-data (tried {}); the saved configuration applies",
                names.join(", ")
            ),
        )),
    }
    let effective = current_config();
    report.extend(effective.errors.iter().map(|e| (Error, e.clone())));
    report.extend(effective.warnings.iter().map(|w| (Warn, w.clone())));
    match yaml_serde::to_string(&effective.value) {
        Ok(text) => {
            let _ = std::fs::create_dir_all("/run/corral");
            let path = std::path::Path::new(store::EFFECTIVE);
            if let Err(e) = store::write_private(path, text.as_bytes()) {
                report.push((Error, format!("writing {}: {e}", store::EFFECTIVE)));
            }
        }
        Err(e) => report.push((Error, format!("{}: {e}", store::EFFECTIVE))),
    }
    // A `#!` user-data for the console to run (`corral runcmd`).
    let script = std::path::Path::new(store::USER_SCRIPT);
    match &effective.script {
        Some(text) => {
            let written = store::write_private(script, text.as_bytes()).and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o700))
            });
            if let Err(e) = written {
                report.push((Error, format!("writing {}: {e}", store::USER_SCRIPT)));
            }
        }
        None => {
            let _ = std::fs::remove_file(script);
        }
    }
    let sys = corral_host::sys::Linux;
    let c = &effective.config;
    let mut problems = Vec::new();
    if let Some(name) = c.host_name() {
        problems.extend(apply::hostname(&sys, name));
        report.push((Info, format!("hostname {name}")));
    }
    problems.extend(apply::sysctl(&sys, &c.corral.sysctl));
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    problems.extend(apply::modules(&sys, release.trim(), &c.corral.modules));
    problems.extend(apply::mounts(&sys, &c.mounts));
    report.extend(problems.into_iter().map(|p| (Error, p)));
    for line in apply::run_commands("bootcmd", &c.bootcmd, BOOTCMD_LIMIT).await {
        report.push((Info, line));
    }
    let mut text = String::new();
    for (level, line) in &report {
        log::log!(*level, "cloud-config: {line}");
        let tag = match level {
            Error => "error",
            Warn => "warning",
            _ => "info",
        };
        text.push_str(&format!("{tag}: {line}\n"));
    }
    let _ = std::fs::write(REPORT, text);
    effective
}

/// The built-in system services, with the OS version filled in.
fn builtin_services() -> String {
    include_str!("../os-config.yml").replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
}

/// Every service this boot runs, with the configuration's environment and network plan.
fn services_for(
    effective: &Effective,
    links: &[network::Link],
) -> corral_system_docker::compose::ServicesFile {
    let builtin = builtin_services();
    let available: Vec<std::path::PathBuf> = assemble::AVAILABLE_DIRS
        .iter()
        .map(std::path::PathBuf::from)
        .collect();
    assemble::services(
        effective,
        &assemble::Sources {
            builtin: &builtin,
            user_dir: std::path::Path::new(SERVICES_DIR),
            available: &available,
            network_env: network::environment(&effective.config.corral.network, links),
        },
    )
}

/// `write_files` entries with `container:`, copied into their service's container.
/// Returns a line per failure.
async fn container_files(docker: &bollard::Docker, effective: &Effective) -> Vec<String> {
    let mut failures = Vec::new();
    for f in &effective.config.write_files {
        let Some(container) = &f.container else {
            continue;
        };
        let result = async {
            if f.append {
                return Err(
                    "append is not supported with container:; write the whole file".to_string(),
                );
            }
            let tar = apply::file_tar(f)?;
            let options = bollard::query_parameters::UploadToContainerOptions {
                path: "/".into(),
                ..Default::default()
            };
            docker
                .upload_to_container(container, Some(options), bollard::body_full(tar.into()))
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(()) => log::info!("cloud-config: wrote {} into service {container}", f.path),
            Err(e) => failures.push(format!(
                "cloud-config: write_files {} into service {container}: {e}",
                f.path
            )),
        }
    }
    failures
}

/// Brings the services up and logs where each one ended; each one that came up is a
/// step of the boot report, after `after`.
async fn bring_up_services(
    docker: &bollard::Docker,
    file: &corral_system_docker::compose::ServicesFile,
    after: &str,
) {
    let start = corral_host::since_boot();
    use corral_system_docker::services::Outcome;
    for w in &file.warnings {
        log::warn!("{w}");
    }
    for e in &file.errors {
        log::error!("{e}; the other services still start");
    }
    for (name, outcome) in corral_system_docker::services::up(docker, file).await {
        let at = corral_host::since_boot();
        if outcome.succeeded() {
            timeline::record(&format!("service {name}"), start, at, Some(after));
        }
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
async fn stop_services(
    spec: &EngineSpec,
    file: &corral_system_docker::compose::ServicesFile,
    timeout: std::time::Duration,
) {
    let Ok(docker) = corral_dockerd::engine::connect(spec).await else {
        return;
    };
    let started = std::time::Instant::now();
    // Every service's container there is: those brought up after the boot (`corral
    // service up`) too. The boot's list if the engine cannot say.
    let names: Vec<String> = match corral_system_docker::api::service_containers(&docker).await {
        Ok(containers) => containers.into_keys().collect(),
        Err(e) => {
            log::warn!("listing the services to stop: {e}; stopping the boot's");
            file.services.keys().cloned().collect()
        }
    };
    let failed =
        corral_system_docker::services::stop_all(&docker, &names, "console", timeout).await;
    for (name, why) in &failed {
        log::warn!("service {name}: stopping failed: {why}");
    }
    log::info!(
        "services stopped in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
