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

/// Stops service `name`'s container `id` cleanly, as `service stop` does:
/// [`STOP_SECONDS`] to go. The service's watcher is told first, so the exit is not taken
/// for a crash and restarted.
pub async fn stop(docker: &Docker, name: &str, id: &str) -> Result<(), bollard::errors::Error> {
    crate::service_watch::stopping(name);
    let options = StopContainerOptions {
        t: Some(STOP_SECONDS),
        signal: None,
    };
    docker.stop_container(id, Some(options)).await
}
