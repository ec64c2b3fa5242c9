//! `corral engine list` and `engine switch IMAGE`: the user engine's image. The engine
//! images are the system engine's images labelled `io.corral.image: engine`; the one in
//! use is the `docker` service's. A switch never leaves the machine without an engine:
//! the new image must be an engine whose dockerd runs (tried on its own first, the old
//! engine untouched), and if the new engine does not answer once it replaced the old,
//! the old comes back.

use crate::compose;
use crate::enable::{edit_failure, Services};
use crate::services::{self, Outcome};
use crate::user_engine::SERVICE;
use bollard::query_parameters::{ListImagesOptions, RemoveContainerOptions};
use bollard::Docker;
use corral_api::protocol::{Engine, Response};
use std::collections::HashMap;
use std::time::Duration;

/// The label that marks an image as a user engine.
pub const ENGINE_LABEL: (&str, &str) = ("io.corral.image", "engine");

/// How long a new engine gets to answer before the old one is put back.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// The container that tries a new engine's dockerd on its own.
const TRIAL: &str = "corral-engine-trial";

/// The image the `docker` service's container runs, if there is one.
async fn in_use(docker: &Docker) -> Option<String> {
    let containers = crate::api::service_containers(docker).await.ok()?;
    let id = containers.get(SERVICE)?;
    docker.inspect_container(id, None).await.ok()?.config?.image
}

/// Every engine image, the one in use marked.
pub async fn list(docker: &Docker) -> Response {
    let (key, value) = ENGINE_LABEL;
    let options = ListImagesOptions {
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![format!("{key}={value}")],
        )])),
        ..Default::default()
    };
    let images = match docker.list_images(Some(options)).await {
        Ok(i) => i,
        Err(e) => return Response::system(format!("listing the system engine's images: {e}")),
    };
    let current = in_use(docker).await;
    let mut engines: Vec<Engine> = images
        .into_iter()
        .flat_map(|i| i.repo_tags)
        .filter(|t| t != "<none>:<none>")
        .map(|image| Engine {
            current: current.as_deref() == Some(image.as_str()),
            image,
        })
        .collect();
    engines.sort_by(|a, b| a.image.cmp(&b.image));
    Response::ok(&engines)
}

/// An image reference as compose text may carry it.
fn plain_reference(image: &str) -> bool {
    !image.is_empty()
        && image.len() <= 255
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "./:-_@".contains(c))
}

/// Whether `image` is in the system engine and labelled an engine.
async fn check(docker: &Docker, image: &str) -> Result<(), Response> {
    if !plain_reference(image) {
        return Err(Response::user(format!(
            "{image:?} is not an image reference (such as corral/engine:0.1.0)"
        )));
    }
    let inspected = docker.inspect_image(image).await.map_err(|_| {
        Response::user(format!(
            "the image {image} is not in the system engine; load it first \
             (sudo system-docker load -i FILE), then switch; `corral engine list` shows the engines there are"
        ))
    })?;
    let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
    let (key, value) = ENGINE_LABEL;
    if labels.get(key).map(String::as_str) != Some(value) {
        return Err(Response::user(format!(
            "{image} is not an engine image (it lacks the label {key}: {value}); `corral engine list` shows the engines"
        )));
    }
    Ok(())
}

/// Runs `dockerd --version` in `image` on its own; its output's first line, or why not.
async fn trial(docker: &Docker, image: &str) -> Result<(), String> {
    let text = format!(
        "services:\n  {TRIAL}:\n    image: {image}\n    entrypoint: [dockerd]\n    command: [--version]\n    net: none\n    \
         labels: {{io.rancher.os.detach: \"false\"}}\n"
    );
    let file = compose::parse("engine trial", &text).map_err(|e| e.to_string())?;
    let service = file.services.get(TRIAL).ok_or("the trial is not defined")?;
    let outcome = services::ensure(docker, TRIAL, service).await;
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    let _ = docker.remove_container(TRIAL, Some(options)).await;
    match outcome {
        Outcome::Completed => Ok(()),
        Outcome::Failed(why) => Err(why),
        other => Err(format!("{other:?}")),
    }
}

/// Brings the `docker` service up as the saved configuration has it, and waits for its
/// socket to answer.
async fn bring_up(docker: &Docker, services: &Services) -> Result<(), String> {
    let mut file = (services.assemble)(true).await;
    file.services.retain(|n, _| n == SERVICE);
    if file.services.is_empty() {
        return Err(format!(
            "the {SERVICE} service is disabled; enable it first"
        ));
    }
    match services::up(docker, &file).await.remove(SERVICE) {
        Some(Outcome::Running { .. }) => {}
        Some(other) => return Err(format!("{other:?}")),
        None => return Err("it was not brought up".into()),
    }
    answers(docker).await
}

/// Waits for the engine's socket to answer; fails as soon as its container stops or
/// restarts (its dockerd exited), else after [`ANSWER_WITHIN`].
async fn answers(docker: &Docker) -> Result<(), String> {
    let deadline = std::time::Instant::now() + ANSWER_WITHIN;
    // The manager restarts services itself (a new start, not dockerd's restart count):
    // a start time that changes is a dockerd that exited in between.
    let mut first_start: Option<String> = None;
    loop {
        if crate::user_engine::answering(Duration::from_secs(1))
            .await
            .is_some()
        {
            return Ok(());
        }
        let inspected = docker
            .inspect_container(SERVICE, None)
            .await
            .map_err(|e| format!("inspecting its container: {e}"))?;
        let state = inspected.state.unwrap_or_default();
        let started = state.started_at.clone().unwrap_or_default();
        let first = first_start.get_or_insert_with(|| started.clone());
        let exited = if !state.running.unwrap_or(false) {
            Some(format!("with code {}", state.exit_code.unwrap_or_default()))
        } else {
            (*first != started).then(|| "and was started again".to_string())
        };
        if let Some(how) = exited {
            return Err(format!(
                "its dockerd exited {how}; `sudo system-docker logs {SERVICE}` shows why"
            ));
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "its socket did not answer within {}s",
                ANSWER_WITHIN.as_secs()
            ));
        }
    }
}

/// `engine switch IMAGE`.
pub async fn switch(docker: &Docker, services: &Services, image: &str) -> Response {
    if let Err(r) = check(docker, image).await {
        return r;
    }
    let old = in_use(docker).await;
    if old.as_deref() == Some(image) {
        return Response::ok(&serde_json::Value::Null);
    }
    if let Err(why) = trial(docker, image).await {
        return Response::user(format!(
            "{image}'s dockerd does not run ({why}); nothing was changed, the engine in use keeps running"
        ));
    }
    let saved = match services.machine.set_layer() {
        Ok(layer) => layer,
        Err(e) => return edit_failure(e),
    };
    let layer_check = &corral_config::validate::layer;
    if let Err(e) = services
        .machine
        .set("corral.docker.engine", image, layer_check)
    {
        return edit_failure(e);
    }
    let failed = match bring_up(docker, services).await {
        Ok(()) => {
            log::info!("user engine: switched to {image}");
            return Response::ok(&serde_json::Value::Null);
        }
        Err(why) => why,
    };
    log::error!("user engine: {image} failed ({failed}); putting the old engine back");
    let restored = services
        .machine
        .change("putting the engine back", layer_check, |doc| {
            *doc = saved;
            Ok(())
        });
    let back = match restored {
        Ok(_) => bring_up(docker, services).await,
        Err(e) => Err(e.to_string()),
    };
    Response::system(match back {
        Ok(()) => format!(
            "the engine {image} did not come up ({failed}); the previous engine ({}) is back",
            old.unwrap_or_default()
        ),
        Err(e) => format!(
            "the engine {image} did not come up ({failed}), and putting the previous one back failed too ({e}); \
             reboot to start the engine the saved configuration names"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_references_reach_a_services_file() {
        assert!(plain_reference("corral/engine:0.1.0"));
        assert!(plain_reference("registry.local:5000/x/engine@sha256:abc"));
        for bad in ["", "a b", "x\n  privileged: true", "x{y}", "'q'"] {
            assert!(!plain_reference(bad), "{bad:?}");
        }
    }
}
