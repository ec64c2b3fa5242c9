//! The engine images (`corral engine list`): the system engine's images labelled
//! `io.corral.image: engine`; the build names each by Docker's major.minor
//! (`io.corral.engine: docker-28.5`), and an engine sharing the root's binaries lists
//! them (`io.corral.engine.host-binaries`), bound read-only wherever it runs. The one in
//! use is the `docker` service's. Finding an engine by name or reference and checking
//! that an image is one; the switch itself is `engine_switch`.

use bollard::query_parameters::ListImagesOptions;
use bollard::Docker;
use corral_api::protocol::{Engine, Response};
use corral_user_docker::SERVICE;
use std::collections::HashMap;
use std::path::Path;

pub use corral_user_docker::labels::{
    ENGINE_LABEL, HOST_BINARIES_LABEL, NAME_LABEL, VERSION_LABEL,
};
/// At most this many binaries are bound from the root.
const MAX_HOST_BINARIES: usize = 32;

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
pub async fn in_use(docker: &Docker) -> Option<String> {
    let containers = crate::containers::service_containers(docker).await.ok()?;
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
pub async fn check(docker: &Docker, image: &str) -> Result<HashMap<String, String>, Response> {
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
