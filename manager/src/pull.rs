//! Pulling the image of a service the machine does not carry, as RancherOS's system
//! engine did for a service from a repository (`services_include`, `corral service
//! enable NAME`): through the system engine, from the registry its reference names,
//! with the system engine's own registry settings (`corral.system_docker.registry_mirror`,
//! `insecure_registry`). Corral's own images (`corral/...`) are never pulled: they come
//! with the OS, and one that is missing is a broken build, not something a registry
//! should fill in.

use bollard::query_parameters::CreateImageOptions;
use bollard::Docker;
use futures_util::StreamExt;

/// Whether a missing `image` may be pulled: not one of Corral's own.
pub fn may_pull(image: &str) -> bool {
    !image.is_empty() && !image.starts_with("corral/")
}

/// `image` split as the pull API takes it: the repository and a tag (`latest` when the
/// reference has none) or a digest.
pub fn split(image: &str) -> (String, String) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    // A `:` after the last `/` is a tag's; before it, a registry's port.
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            image[last_slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// Pulls `image` into the system engine for `service`, logging the start and the end.
pub async fn pull(docker: &Docker, service: &str, image: &str) -> Result<(), String> {
    let (repo, tag) = split(image);
    log::info!("service {service}: pulling {image} (not on this machine)");
    let started = std::time::Instant::now();
    let options = CreateImageOptions {
        from_image: Some(repo),
        tag: Some(tag),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), None, None);
    let mut layers = std::collections::BTreeSet::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| format!("pulling {image}: {e}"))?;
        if info.status.as_deref() == Some("Pull complete") {
            if let Some(id) = info.id {
                layers.insert(id);
            }
        }
    }
    log::info!(
        "service {service}: pulled {image} ({} new layers) in {:.1}s",
        layers.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_splits_into_repository_and_tag_or_digest() {
        let cases = [
            (
                "rancher/os-alpineconsole",
                ("rancher/os-alpineconsole", "latest"),
            ),
            ("alpine:3.20", ("alpine", "3.20")),
            (
                "127.0.0.1:5000/test/busybox:1",
                ("127.0.0.1:5000/test/busybox", "1"),
            ),
            (
                "127.0.0.1:5000/test/busybox",
                ("127.0.0.1:5000/test/busybox", "latest"),
            ),
            ("reg.test/a@sha256:0123", ("reg.test/a", "sha256:0123")),
        ];
        for (image, (repo, tag)) in cases {
            assert_eq!(split(image), (repo.to_string(), tag.to_string()), "{image}");
        }
    }

    #[test]
    fn corrals_own_images_are_never_pulled() {
        assert!(!may_pull("corral/console:0.1.0"));
        assert!(!may_pull(""));
        assert!(may_pull("rancher/os-openvmtools:v10.3.10-1"));
    }
}
