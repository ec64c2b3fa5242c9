//! The `docker` service, which runs the user engine, as the manager drives it: filled in
//! from `corral.docker` by corral-user-docker's `service` before it starts, its image
//! settled against the engine images the system engine has, waited for and preloaded
//! after (steps of the boot report), and the swarm `corral.swarm` names started or joined
//! once it answers. The manager reaches the user engine through its
//! socket only (corral-user-docker's `client`).

use corral_compose::ServicesFile;
use corral_config::schema::Swarm;
use corral_config::store::Effective;
use corral_user_docker::client::answering;
use corral_user_docker::preload;
use corral_user_docker::service::{configure_service, plan, server_names, Dirs, MODULES};
use corral_user_docker::swarm;
use std::time::Duration;

pub use corral_user_docker::SERVICE;

/// Settles the `docker` service's image: an engine's name (`docker-26.1`) becomes the
/// image of that name, and the root's binaries the image runs are bound read-only.
/// When the configuration picks an engine that is not there, or cannot run on this root,
/// the service keeps the built-in engine; each reason is returned.
pub async fn settle_image(
    docker: &bollard::Docker,
    file: &mut ServicesFile,
    default_image: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(service) = file.services.get_mut(SERVICE) else {
        return problems;
    };
    let wanted = service.image.clone();
    let mut candidates = vec![wanted.as_str()];
    if wanted != default_image {
        candidates.push(default_image);
    }
    for candidate in candidates {
        let settled = async {
            let image = crate::engine_images::resolve(docker, candidate).await?;
            let Some(labels) = crate::engine_images::labels(docker, &image).await else {
                return Err(format!(
                    "the image {image} is not in the system engine; load it \
                     (`system-docker load`) or fix the name"
                ));
            };
            let binds = crate::engine_images::host_binds(&labels, |p| p.is_file())
                .map_err(|why| format!("{image} cannot run here: {why}"))?;
            Ok((image, binds))
        };
        match settled.await {
            Ok((image, binds)) => {
                service.image = image;
                service.volumes.extend(binds);
                return problems;
            }
            Err(why) if candidate != default_image => problems.push(format!(
                "corral.docker.engine: {why}. The user engine runs {default_image}"
            )),
            Err(why) => problems.push(format!("the built-in engine {default_image}: {why}")),
        }
    }
    service.image = default_image.to_string();
    problems
}

/// Waits up to `within` for the user engine to answer, starts the swarm work for
/// `swarm` in the background (corral-user-docker's `swarm::apply`, retried until done;
/// when the engine is late, once it answers however long that takes), and loads what
/// users preloaded. Logs the moment it answered and each archive; both are steps of the
/// boot report, the engine's from `started` (when its service was asked to start).
pub async fn when_ready(within: Duration, started: f64, swarm: Swarm) {
    // corral-engine starts containerd and waits for it before it starts dockerd; the
    // engine's exec root is dockerd's default, so the default arguments name its socket.
    let service = format!("service {SERVICE}");
    let containerd = tokio::spawn(crate::timeline::when_socket(
        crate::timeline::USER_CONTAINERD,
        corral_user_docker::engine_init::containerd_for(&[]).socket,
        started,
        service.clone(),
        within,
    ));
    let Some(docker) = answering(within).await else {
        containerd.abort();
        start_swarm(swarm, None, within);
        log::error!(
            "user engine: not answering on {} after {}s; see `system-docker logs docker`",
            corral_user_docker::SOCKET,
            within.as_secs()
        );
        return;
    };
    let ready = corral_host::since_boot();
    log::info!("user engine: ready at {ready:.2}s");
    crate::timeline::record(crate::timeline::USER_ENGINE, started, ready, Some(&service));
    containerd.abort();
    crate::timeline::engine_parts(
        crate::timeline::USER_CONTAINERD,
        crate::timeline::USER_API,
        ready,
    );
    start_swarm(swarm, Some(docker.clone()), within);
    let dir = std::path::Path::new(corral_user_docker::PRELOAD_DIR);
    for (archive, result) in preload::load_all(&docker, dir).await {
        match result {
            Ok(images) => log::info!(
                "user engine: preloaded {} ({})",
                archive.display(),
                images.join(", ")
            ),
            Err(e) => log::error!(
                "user engine: preloading {}: {e}; it is tried again at the next boot",
                archive.display()
            ),
        }
    }
    crate::timeline::record(
        "user images preloaded",
        ready,
        corral_host::since_boot(),
        Some(crate::timeline::USER_ENGINE),
    );
}

/// Runs `swarm::apply` for `swarm` in the background, once per manager: the services
/// are brought up again after every system engine restart, and two loops would send
/// the same join twice. With no `engine` (it did not answer within the boot's wait) it
/// waits for the engine as long as it takes, `within` at a time: a slow engine delays
/// the swarm, never drops it.
fn start_swarm(swarm: Swarm, engine: Option<bollard::Docker>, within: Duration) {
    static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if STARTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async move {
        let docker = match engine {
            Some(docker) => docker,
            None => loop {
                if let Some(docker) = answering(within).await {
                    break docker;
                }
                log::warn!(
                    "swarm: the user engine has not answered for {}s; corral.swarm waits for it",
                    within.as_secs()
                );
            },
        };
        swarm::apply::run(
            &docker,
            &swarm.role,
            swarm.availability,
            &swarm::apply::Paths::default(),
            swarm::apply::Timing::default(),
        )
        .await
    });
}

/// How long the user engine gets to answer after its service started.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(180);

/// Fills in the user engine's service from `corral.docker`, and reports how.
pub async fn prepare(
    docker: &bollard::Docker,
    effective: &Effective,
    file: &mut corral_compose::ServicesFile,
) {
    let mut report = Vec::new();
    // dockerd asks for these with modprobe, which the engine image does not have.
    let wanted: Vec<String> = MODULES.iter().map(|m| m.to_string()).collect();
    let what = format!("loading {}", wanted.join(", "));
    for problem in crate::apply::load_running(&wanted, &what) {
        report.push((log::Level::Warn, problem));
    }
    let plan = plan(effective, &mut report);
    report.extend(configure_service(
        file,
        &plan,
        &Dirs::host(),
        &server_names(),
    ));
    let default_image = format!("corral/engine:{}", env!("CARGO_PKG_VERSION"));
    for e in settle_image(docker, file, &default_image).await {
        report.push((log::Level::Error, e));
    }
    for (level, line) in report {
        log::log!(level, "user engine: {line}");
    }
}
