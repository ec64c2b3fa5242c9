//! `corral engine list` and `engine switch ENGINE`: the user engine's image. The engine
//! images are the system engine's images labelled `io.corral.image: engine`; the build
//! names each by Docker's major.minor (`io.corral.engine: docker-28.5`), and an engine
//! sharing the root's binaries lists them (`io.corral.engine.host-binaries`), bound
//! read-only wherever it runs. The one in use is the `docker` service's. A switch never
//! leaves the machine without an engine: the new image must be an engine whose dockerd
//! runs (tried on its own first, the old engine untouched), and if the new engine does
//! not answer once it replaced the old, the old comes back.

use crate::compose;
use crate::enable::{edit_failure, Services};
use crate::services::{self, Outcome};
use crate::user_engine::SERVICE;
use bollard::query_parameters::{ListImagesOptions, RemoveContainerOptions};
use bollard::Docker;
use corral_api::protocol::{Engine, Response};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

pub use corral_user_docker::labels::{
    ENGINE_LABEL, HOST_BINARIES_LABEL, NAME_LABEL, VERSION_LABEL,
};
/// At most this many binaries are bound from the root.
const MAX_HOST_BINARIES: usize = 32;

/// How long a new engine gets to answer before the old one is put back.
const ANSWER_WITHIN: Duration = Duration::from_secs(120);

/// The container that tries a new engine's dockerd on its own.
const TRIAL: &str = "corral-engine-trial";

/// One engine image in the system engine.
struct EngineImage {
    reference: String,
    name: Option<String>,
    version: Option<String>,
}

/// Whether `text` is an engine's name (`docker-26.1`) rather than an image reference.
pub fn is_engine_name(text: &str) -> bool {
    text.strip_prefix("docker-").is_some_and(|v| {
        !v.is_empty() && v.len() <= 32 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
    })
}

/// Every tagged engine image, sorted by name, then reference.
async fn engine_images(docker: &Docker) -> Result<Vec<EngineImage>, String> {
    let (key, value) = ENGINE_LABEL;
    let options = ListImagesOptions {
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![format!("{key}={value}")],
        )])),
        ..Default::default()
    };
    let images = docker
        .list_images(Some(options))
        .await
        .map_err(|e| format!("listing the system engine's images: {e}"))?;
    let mut engines: Vec<EngineImage> = images
        .into_iter()
        .flat_map(|i| {
            let name = i.labels.get(NAME_LABEL).cloned();
            let version = i.labels.get(VERSION_LABEL).cloned();
            i.repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .map(move |reference| EngineImage {
                    reference,
                    name: name.clone(),
                    version: version.clone(),
                })
        })
        .collect();
    engines.sort_by(|a, b| (&a.name, &a.reference).cmp(&(&b.name, &b.reference)));
    Ok(engines)
}

/// The image reference for `wanted`: an engine's name is looked up among the engine
/// images (Corral's own image of that name first); anything else is taken as a
/// reference. A name no image has is the user's error, listing the engines there are.
pub async fn resolve(docker: &Docker, wanted: &str) -> Result<String, String> {
    if !is_engine_name(wanted) {
        return Ok(wanted.to_string());
    }
    let engines = engine_images(docker).await?;
    let own = format!(":{}", env!("CARGO_PKG_VERSION"));
    let mut named: Vec<&EngineImage> = engines
        .iter()
        .filter(|e| e.name.as_deref() == Some(wanted))
        .collect();
    named.sort_by_key(|e| !(e.reference.starts_with("corral/") && e.reference.ends_with(&own)));
    if let Some(e) = named.first() {
        return Ok(e.reference.clone());
    }
    let there: Vec<String> = engines
        .iter()
        .map(|e| match &e.name {
            Some(n) => format!("{n} ({})", e.reference),
            None => e.reference.clone(),
        })
        .collect();
    Err(format!(
        "there is no engine named {wanted}; the engines here: {}",
        if there.is_empty() {
            "none".to_string()
        } else {
            there.join(", ")
        }
    ))
}

/// The volumes that bind an engine image's host binaries (its
/// [`HOST_BINARIES_LABEL`]) read-only at the same paths; `is_file` says whether the
/// root has one. A label that is not a short list of plain absolute paths, or names a
/// binary the root lacks, is refused: that engine cannot run here.
pub fn host_binds(
    labels: &HashMap<String, String>,
    is_file: impl Fn(&Path) -> bool,
) -> Result<Vec<String>, String> {
    let Some(list) = labels.get(HOST_BINARIES_LABEL) else {
        return Ok(Vec::new());
    };
    let paths: Vec<&str> = list.split_whitespace().collect();
    if paths.len() > MAX_HOST_BINARIES {
        return Err(format!(
            "its label {HOST_BINARIES_LABEL} lists {} binaries, more than {MAX_HOST_BINARIES}",
            paths.len()
        ));
    }
    paths
        .into_iter()
        .map(|p| {
            let plain = p.len() <= 255
                && p.starts_with('/')
                && p.split('/').skip(1).all(|part| {
                    !part.is_empty()
                        && part != "."
                        && part != ".."
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
                });
            if !plain {
                return Err(format!(
                    "its label {HOST_BINARIES_LABEL} holds {p:?}, not a plain absolute path"
                ));
            }
            if !is_file(Path::new(p)) {
                return Err(format!(
                    "it runs the root's {p}, which this root does not have"
                ));
            }
            Ok(format!("{p}:{p}:ro"))
        })
        .collect()
}

/// The labels of `image` as the system engine has it; `None` when it does not have it.
pub async fn labels(docker: &Docker, image: &str) -> Option<HashMap<String, String>> {
    let inspected = docker.inspect_image(image).await.ok()?;
    Some(inspected.config.and_then(|c| c.labels).unwrap_or_default())
}

/// The image the `docker` service's container runs, if there is one.
async fn in_use(docker: &Docker) -> Option<String> {
    let containers = crate::api::service_containers(docker).await.ok()?;
    let id = containers.get(SERVICE)?;
    docker.inspect_container(id, None).await.ok()?.config?.image
}

/// The name of the engine the `docker` service runs (its image's label).
pub async fn in_use_name(docker: &Docker) -> Option<String> {
    let image = in_use(docker).await?;
    labels(docker, &image).await?.remove(NAME_LABEL)
}

/// Every engine image, the one in use marked.
pub async fn list(docker: &Docker) -> Response {
    let images = match engine_images(docker).await {
        Ok(i) => i,
        Err(e) => return Response::system(e),
    };
    let current = in_use(docker).await;
    let engines: Vec<Engine> = images
        .into_iter()
        .map(|e| Engine {
            current: current.as_deref() == Some(e.reference.as_str()),
            image: e.reference,
            name: e.name,
            version: e.version,
        })
        .collect();
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

/// Whether `image` is in the system engine and labelled an engine; its labels.
async fn check(docker: &Docker, image: &str) -> Result<HashMap<String, String>, Response> {
    if !plain_reference(image) {
        return Err(Response::user(format!(
            "{image:?} is not an image reference (such as corral/engine:0.1.0)"
        )));
    }
    let labels = labels(docker, image).await.ok_or_else(|| {
        Response::user(format!(
            "the image {image} is not in the system engine; load it first \
             (sudo system-docker load -i FILE), then switch; `corral engine list` shows the engines there are"
        ))
    })?;
    let (key, value) = ENGINE_LABEL;
    if labels.get(key).map(String::as_str) != Some(value) {
        return Err(Response::user(format!(
            "{image} is not an engine image (it lacks the label {key}: {value}); `corral engine list` shows the engines"
        )));
    }
    Ok(labels)
}

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

/// `engine switch ENGINE`: an engine's name or an engine image; what was asked for is
/// what is saved, so a name keeps meaning the newest image of that name.
pub async fn switch(docker: &Docker, services: &Services, wanted: &str) -> Response {
    let image = match resolve(docker, wanted).await {
        Ok(i) => i,
        Err(why) => return Response::user(why),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_docker_and_a_version() {
        for name in ["docker-26.1", "docker-28.5", "docker-29"] {
            assert!(is_engine_name(name), "{name}");
        }
        for other in [
            "docker-",
            "corral/engine:0.1.0",
            "docker-26.1:x",
            "docker-a/b",
            "engine",
        ] {
            assert!(!is_engine_name(other), "{other}");
        }
    }

    #[test]
    fn host_binaries_are_bound_read_only_where_they_are() {
        let labels = |v: &str| HashMap::from([(HOST_BINARIES_LABEL.to_string(), v.to_string())]);
        let all = |_: &Path| true;
        assert_eq!(
            host_binds(&labels("/usr/sbin/dockerd  /usr/bin/crun"), all).unwrap(),
            [
                "/usr/sbin/dockerd:/usr/sbin/dockerd:ro",
                "/usr/bin/crun:/usr/bin/crun:ro"
            ]
        );
        assert_eq!(
            host_binds(&HashMap::new(), all).unwrap(),
            Vec::<String>::new()
        );
        for bad in [
            "usr/bin/x",
            "/usr/../etc/shadow",
            "/a:/b",
            "/x,rw",
            "/a//b",
            "/",
        ] {
            let e = host_binds(&labels(bad), all).unwrap_err();
            assert!(e.contains("not a plain absolute path"), "{bad}: {e}");
        }
        let many = vec!["/usr/bin/x"; 33].join(" ");
        assert!(host_binds(&labels(&many), all)
            .unwrap_err()
            .contains("more than 32"));
        let e = host_binds(&labels("/usr/sbin/dockerd /usr/bin/nope"), |p: &Path| {
            p != Path::new("/usr/bin/nope")
        })
        .unwrap_err();
        assert_eq!(
            e,
            "it runs the root's /usr/bin/nope, which this root does not have"
        );
    }

    #[test]
    fn only_plain_references_reach_a_services_file() {
        assert!(plain_reference("corral/engine:0.1.0"));
        assert!(plain_reference("registry.local:5000/x/engine@sha256:abc"));
        for bad in ["", "a b", "x\n  privileged: true", "x{y}", "'q'"] {
            assert!(!plain_reference(bad), "{bad:?}");
        }
    }
}
