//! `corral engine switch ENGINE`: the user engine's image replaced. A switch never leaves
//! the machine without an engine: the new image must be an engine whose dockerd runs
//! (tried on its own first, the old engine untouched), and if the new engine does not
//! answer once it replaced the old, the old comes back.

use crate::enable::{edit_failure, Services};
use crate::engine_images::{check, host_binds, in_use, resolve};
use crate::services::{self, Outcome};
use bollard::query_parameters::RemoveContainerOptions;
use bollard::Docker;
use corral_api::protocol::Response;
use corral_compose as compose;
use corral_user_docker::SERVICE;
use std::time::Duration;

/// How long a new engine gets to answer before the old one is put back: as long as the
/// user engine gets at boot. Under TCG the newest engine's first answer after a switch
/// took 91-127 s in the end-to-end runs of 2026-12-03; 120 s failed the switch twice.
const ANSWER_WITHIN: Duration = crate::user_engine::WAIT;

/// The container that tries a new engine's dockerd on its own.
const TRIAL: &str = "corral-engine-trial";

/// Runs `dockerd --version` in `image` on its own, with the root's binaries it needs
/// (`binds`) as the service will have them; why not, when it fails.
async fn trial(docker: &Docker, image: &str, binds: &[String]) -> Result<(), String> {
    let text = format!(
        "services:\n  {TRIAL}:\n    image: {image}\n    entrypoint: [dockerd]\n    command: [--version]\n    net: none\n    \
         labels: {{io.rancher.os.detach: \"false\"}}\n"
    );
    let mut file = compose::parse("engine trial", &text).map_err(|e| e.to_string())?;
    let service = file
        .services
        .get_mut(TRIAL)
        .ok_or("the trial is not defined")?;
    service.volumes.extend(binds.iter().cloned());
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
        if corral_user_docker::client::answering(Duration::from_secs(1))
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
        let exited = services::stopped_since(&state, &mut first_start).map(|s| match s {
            services::Stopped::Exited(code) => format!("with code {code}"),
            services::Stopped::Restarted(_) => "and was started again".to_string(),
        });
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

/// `engine switch ENGINE`: an engine's name or an engine image; what was asked for is
/// what is saved, so a name keeps meaning the newest image of that name.
pub async fn switch(docker: &Docker, services: &Services, wanted: &str) -> Response {
    let image = match resolve(docker, wanted).await {
        Ok(i) => i,
        Err(why) => {
            // RancherOS's engines by name (`docker-18.09.2`) from a repository's index.
            let repos = services.machine.in_force().config.corral.repositories;
            let name = wanted.to_string();
            let offered = tokio::task::spawn_blocking(move || {
                crate::repositories::offering_engine(&repos, &name)
            })
            .await
            .ok()
            .flatten();
            return Response::user(match offered {
                Some(repo) => format!(
                    "repository {repo} offers engine {wanted}, a RancherOS engine image: \
                     Corral's user engine runs engine images made for it (dockerd with \
                     corral-engine), so it is not used. {why}"
                ),
                None => why,
            });
        }
    };
    let image = image.as_str();
    let labels = match check(docker, image).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let binds = match host_binds(&labels, |p| p.is_file()) {
        Ok(b) => b,
        Err(why) => {
            return Response::user(format!(
                "{image} cannot run here ({why}); nothing was changed"
            ))
        }
    };
    let old = in_use(docker).await;
    if old.as_deref() == Some(image) {
        return Response::ok(&serde_json::Value::Null);
    }
    if let Err(why) = trial(docker, image, &binds).await {
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
        .set("corral.docker.engine", wanted, layer_check)
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
