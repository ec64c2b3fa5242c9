//! Talking to the user engine through its socket: connecting (the API version
//! negotiated), waiting for it to answer, and stopping its workloads at shutdown.

use crate::SOCKET;
use std::time::Duration;

/// Connects to the user engine's socket, the API version negotiated.
pub async fn connect() -> Option<bollard::Docker> {
    corral_dockerd::engine::connect_to("user", std::path::Path::new(SOCKET))
        .await
        .ok()
}

/// Waits up to `within` for the user engine to answer a ping; the connected client.
pub async fn answering(within: Duration) -> Option<bollard::Docker> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(d) = connect().await {
            if d.ping().await.is_ok() {
                return Some(d);
            }
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops the user engine's running containers (SIGTERM, then `timeout` before dockerd
/// kills them), all at once. Returns how many were stopped and the failures.
pub async fn stop_workloads(timeout: Duration) -> (usize, Vec<String>) {
    let Some(docker) = connect().await else {
        return (0, Vec::new());
    };
    let Ok(running) = docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
    else {
        return (0, Vec::new());
    };
    let ids: Vec<String> = running.into_iter().filter_map(|c| c.id).collect();
    let stops = ids.iter().map(|id| {
        let docker = docker.clone();
        async move {
            let opts = bollard::query_parameters::StopContainerOptions {
                t: Some(timeout.as_secs() as i32),
                signal: None,
            };
            docker
                .stop_container(id, Some(opts))
                .await
                .map_err(|e| format!("container {}: {e}", &id[..12.min(id.len())]))
        }
    });
    let failures: Vec<String> = futures_util::future::join_all(stops)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    (ids.len() - failures.len(), failures)
}
