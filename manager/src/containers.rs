//! The system services' containers in the system engine: found by their service label,
//! stopped the way `corral service stop` stops them.

use crate::services::SERVICE;
use bollard::query_parameters::{ListContainersOptions, StopContainerOptions};
use bollard::Docker;
use std::collections::HashMap;

/// How long a service gets to stop for `corral service stop`, `restart` and `disable`.
pub const STOP_SECONDS: i32 = 10;

/// Every container of a Corral service (labelled with its service), by service name.
pub async fn service_containers(docker: &Docker) -> Result<HashMap<String, String>, String> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![SERVICE.to_string()],
        )])),
        ..Default::default()
    };
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| e.to_string())?;
    Ok(containers
        .into_iter()
        .filter_map(|c| {
            let name = c.labels.as_ref()?.get(SERVICE)?.clone();
            Some((name, c.id?))
        })
        .collect())
}

/// How long service `name` gets between its stop signal and SIGKILL: [`STOP_SECONDS`];
/// the user engine's service what its dockerd needs to stop its workloads and exit
/// ([`corral_user_docker::service::stop_seconds`], 30 s by default).
pub fn stop_seconds(name: &str) -> i32 {
    if name != corral_user_docker::SERVICE {
        return STOP_SECONDS;
    }
    let config = std::path::Path::new(corral_user_docker::CONFIG_DIR);
    i32::try_from(corral_user_docker::service::stop_seconds(config)).unwrap_or(i32::MAX)
}

/// Before service `name` is stopped: with `live-restore` on in the running user engine,
/// its dockerd leaves the workloads running when it stops, and the end of the engine's
/// container then kills every process in it, the workloads without a stop signal (exit
/// 255). So they are stopped through the engine's API first, each within its stop time
/// (`shutdown-timeout`, 10 s by default). Nothing for other services or without it.
pub async fn stop_workloads_first(name: &str) {
    if name != corral_user_docker::SERVICE
        || !corral_user_docker::client::live_restore_on(std::time::Duration::from_secs(5)).await
    {
        return;
    }
    let config = std::path::Path::new(corral_user_docker::CONFIG_DIR);
    let seconds = corral_user_docker::service::workload_stop_seconds(config);
    let started = std::time::Instant::now();
    let (stopped, failures) =
        corral_user_docker::client::stop_workloads(std::time::Duration::from_secs(seconds)).await;
    for f in failures {
        log::warn!("user engine: stopping {f}");
    }
    log::info!(
        "user engine (live-restore): {stopped} containers stopped in {:.1}s before its service stops",
        started.elapsed().as_secs_f64()
    );
}

/// Stops service `name`'s container `id` cleanly, as `service stop` does:
/// [`stop_seconds`] to go (the user engine's workloads first with live-restore,
/// [`stop_workloads_first`]). The service's watcher is told first, so the exit is not
/// taken for a crash and restarted.
pub async fn stop(docker: &Docker, name: &str, id: &str) -> Result<(), bollard::errors::Error> {
    crate::service_watch::stopping(name);
    stop_workloads_first(name).await;
    let options = StopContainerOptions {
        t: Some(stop_seconds(name)),
        signal: None,
    };
    docker.stop_container(id, Some(options)).await
}
