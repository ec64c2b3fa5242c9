//! `corral-manager status`: the system engine's version, storage driver, images and
//! containers, asked through its API (a debugging aid on the host).

use crate::error::{ManagerError, Result};
use corral_dockerd::engine::EngineSpec;

fn api(what: &'static str) -> impl FnOnce(bollard::errors::Error) -> ManagerError {
    move |source| ManagerError::Api { what, source }
}

/// `corral-manager status`: asks the system engine, through its API, what it runs.
pub fn print() -> Result<()> {
    let spec = EngineSpec::system();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ManagerError::Runtime)?;
    runtime.block_on(async {
        let docker = corral_dockerd::engine::connect(&spec).await?;
        let version = docker
            .version()
            .await
            .map_err(api("asking the system engine its version"))?;
        let info = docker
            .info()
            .await
            .map_err(api("asking the system engine for its info"))?;
        let images = docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .map_err(api("listing the system engine's images"))?;
        let mut tags: Vec<String> = images.into_iter().flat_map(|i| i.repo_tags).collect();
        tags.sort();
        println!(
            "system engine: docker {}, API {}, storage driver {}, {} containers, data root {}",
            version.version.unwrap_or_default(),
            version.api_version.unwrap_or_default(),
            info.driver.unwrap_or_default(),
            info.containers.unwrap_or_default(),
            info.docker_root_dir.unwrap_or_default(),
        );
        println!("images: {}", tags.join(" "));
        let options = bollard::query_parameters::ListContainersOptions {
            all: true,
            ..Default::default()
        };
        let containers = docker
            .list_containers(Some(options))
            .await
            .map_err(api("listing the system engine's containers"))?;
        let mut lines: Vec<String> = containers
            .into_iter()
            .map(|c| {
                let name = c
                    .names
                    .unwrap_or_default()
                    .join(",")
                    .trim_start_matches('/')
                    .to_string();
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                format!("{name}={state}")
            })
            .collect();
        lines.sort();
        println!("services: {}", lines.join(" "));
        Ok(())
    })
}
