//! What follows each start of the system engine: the API socket (once per boot), the
//! system images, the network service and the configuration (once per boot), the user
//! engine's service prepared, every service brought up and watched (for as long as
//! that engine runs). A manager started again in the same boot takes the configuration
//! as the first one applied it.

use crate::configure::{configure, configured_this_boot, current_config};
use crate::timeline::{self, CONFIGURATION, ENGINE, IMAGES};
use crate::{api, apply, assemble, enable, network, user_engine};
use corral_config::store::Effective;
use corral_dockerd::engine::EngineSpec;
use corral_dockerd::images;
use tokio::sync::watch;

/// Where users' services files live (`*.yml`, read in name order after the built-in
/// ones); a state partition keeps them.
const SERVICES_DIR: &str = "/var/lib/corral/conf/services";

/// What follows each start of the system engine: load the system images; the first
/// time, bring the network up, fetch and apply the configuration; then bring the
/// services up and watch them for as long as `engine_run` is open (the engine runs).
/// Returns the services it brought up.
pub async fn on_engine_ready(
    spec: &EngineSpec,
    quiet: watch::Receiver<bool>,
    engine_run: watch::Receiver<()>,
    configured: &mut Option<Effective>,
) -> Option<corral_compose::ServicesFile> {
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
                    engine_dirs: corral_user_docker::service::Dirs::host(),
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
        // A manager started again in the same boot (the last one was killed): the
        // configuration was fetched and applied already; bootcmd does not run twice.
        None if configured_this_boot() => {
            log::warn!(
                "the configuration was applied earlier in this boot, by a manager that \
                 has since stopped; the saved configuration applies, not fetched again"
            );
            let e = current_config();
            *configured = Some(e.clone());
            e
        }
        None => {
            // The network first, as the saved configuration has it: the datasources
            // that live on the network need it.
            let saved = current_config();
            let early = services_for(&saved, &links, Problems::Quiet);
            let network = corral_compose::ServicesFile {
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
    // Services the configuration turns on from RancherOS's repositories, fetched once
    // and kept (the network is up: the datasources used it).
    {
        let effective = effective.clone();
        let dirs = available_dirs();
        let _ = tokio::task::spawn_blocking(move || {
            crate::repositories::fetch_included(&effective, &dirs)
        })
        .await;
    }
    let mut file = services_for(&effective, &links, Problems::Log);
    prepare_to_start(&docker, &effective, &mut file).await;
    let since = crate::service_watch::now_stamp();
    let services_start = corral_host::since_boot();
    bring_up_services(&docker, &file, CONFIGURATION).await;
    if file.services.contains_key("console") {
        tokio::spawn(timeline::when_listening(
            timeline::SSHD,
            22,
            services_start,
            "service console",
            user_engine::WAIT,
        ));
    }
    if file.services.contains_key(user_engine::SERVICE) {
        tokio::spawn(user_engine::when_ready(
            user_engine::WAIT,
            services_start,
            effective.config.corral.swarm.clone(),
        ));
    }
    tokio::spawn(crate::service_watch::run(docker, since, quiet, engine_run));
    Some(file)
}

/// The services as the saved configuration has them now, for `corral service enable`,
/// `disable` and `up`.
fn assembler(docker: bollard::Docker) -> enable::Assemble {
    std::sync::Arc::new(move |to_start| {
        let docker = docker.clone();
        Box::pin(async move {
            let effective = current_config();
            let links = network::wired_links(std::path::Path::new("/sys/class/net"));
            let mut file = services_for(&effective, &links, Problems::Log);
            if to_start {
                prepare_to_start(&docker, &effective, &mut file).await;
            }
            file
        })
    })
}

/// What the services need before they start that takes the system engine: the user
/// engine's flags and files, and the configured console's image.
async fn prepare_to_start(
    docker: &bollard::Docker,
    effective: &Effective,
    file: &mut corral_compose::ServicesFile,
) {
    user_engine::prepare(docker, effective, file).await;
    let console = effective.config.corral.console.as_deref();
    let repositories = &effective.config.corral.repositories;
    crate::consoles::prepare(docker, console, repositories, file).await;
}

/// Where optional services are looked up ([`assemble::AVAILABLE_DIRS`]).
fn available_dirs() -> Vec<std::path::PathBuf> {
    assemble::AVAILABLE_DIRS
        .iter()
        .map(std::path::PathBuf::from)
        .collect()
}

/// The built-in system services, with the OS version filled in.
fn builtin_services() -> String {
    include_str!("../os-config.yml").replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
}

/// Whether [`services_for`] logs what of the network configuration and of `write_files`
/// for services cannot be done.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Problems {
    Log,
    /// The boot's early network, from the saved configuration: the configured one that
    /// follows logs them, once.
    Quiet,
}

/// Every service this boot runs, with the configuration's environment and network plan;
/// the kernel modules that plan needs (bridges, bonds, VLANs) are loaded and the IPv6
/// settings written here, before the network service can start with it (each time, so
/// that `corral service up network` after a change has what it needs); what of the
/// network configuration cannot be done is logged as an error naming the interface.
fn services_for(
    effective: &Effective,
    links: &[network::Link],
    problems: Problems,
) -> corral_compose::ServicesFile {
    let net = &effective.config.corral.network;
    let plan = network::plan(net, links);
    if problems == Problems::Log {
        for problem in &plan.problems {
            log::error!("corral.{problem}");
        }
    }
    let wanted = network::modules(&plan);
    let what = format!("corral.network: loading {}", wanted.join(", "));
    for problem in crate::apply::load_running(&wanted, &what) {
        log::warn!("{problem}");
    }
    let user_sysctl: Vec<&str> = effective
        .config
        .corral
        .sysctl
        .keys()
        .map(|k| k.0.as_str())
        .collect();
    for (path, value) in network::ipv6_sysctls(links, &user_sysctl) {
        // A kernel without IPv6 (or a link gone since) has no such file: nothing to do.
        if std::path::Path::new(&path).exists() {
            if let Err(e) = std::fs::write(&path, format!("{value}\n")) {
                log::warn!("corral.network: writing {value} to {path}: {e}");
            }
        }
    }
    let builtin = builtin_services();
    let available = available_dirs();
    let mut file = assemble::services(
        effective,
        &assemble::Sources {
            builtin: &builtin,
            user_dir: std::path::Path::new(SERVICES_DIR),
            available: &available,
            network_env: network::environment(net, &plan),
        },
    );
    attach_files(effective, &mut file, problems);
    file
}

/// `write_files` entries with `container:`, attached to their services so that each file
/// is in the container before its command first runs (RancherOS's services wrote theirs
/// as they started: a network `pre_cmds` script can be one). Each entry that cannot go
/// is logged as an error (unless `problems` says the caller is quiet).
fn attach_files(
    effective: &Effective,
    file: &mut corral_compose::ServicesFile,
    problems: Problems,
) {
    for f in &effective.config.write_files {
        let Some(container) = &f.container else {
            continue;
        };
        let tar = if f.append {
            Err("append is not supported with container:; write the whole file".to_string())
        } else {
            apply::file_tar(f)
        };
        let attached = tar.and_then(|tar| match file.services.get_mut(&container.0) {
            Some(service) => {
                service.files.push(tar);
                Ok(())
            }
            None => Err(format!(
                "there is no service {container} on this machine (see `corral service list`)"
            )),
        });
        if let (Err(e), Problems::Log) = (attached, problems) {
            log::error!(
                "cloud-config: write_files {} into service {container}: {e}",
                f.path
            );
        }
    }
}

/// Brings the services up and logs where each one ended; each one that came up is a
/// step of the boot report, after `after`.
async fn bring_up_services(
    docker: &bollard::Docker,
    file: &corral_compose::ServicesFile,
    after: &str,
) {
    let start = corral_host::since_boot();
    use crate::services::Outcome;
    for w in &file.warnings {
        log::warn!("{w}");
    }
    for e in &file.errors {
        log::error!("{e}; the other services still start");
    }
    crate::services::up_each(docker, file, |name, outcome| {
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
            Outcome::Skipped(why) | Outcome::Blocked(why) => {
                log::error!("service {name}: not started: {why}")
            }
        }
    })
    .await;
}
