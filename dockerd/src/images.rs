//! The system images that ship in the root: archives in `/usr/share/corral/images/`
//! listed in `index.json` (written by corral-build with each archive's sha256 and image
//! ID). Each is loaded into the system engine unless the engine already has that image
//! ID under its reference; a corrupt or unloadable archive is reported by name and
//! skipped, and the others still load. Also `load_file`, the streamed `docker load` of
//! one archive that the console switch and the user engine's preload use; every load
//! gets [`LOAD_WITHIN`] rather than the client's usual 120 s.

use crate::error::{DockerdError, Result};
use bollard::query_parameters::ImportImageOptions;
use bollard::Docker;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Where the build puts the archives and their index.
pub const IMAGES_DIR: &str = "/usr/share/corral/images";

/// One entry of `index.json` (corral-build writes it with this same type).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Archive {
    pub name: String,
    pub reference: String,
    /// `sha256:<hex>` of the image config.
    pub image_id: String,
    /// sha256 of the archive file.
    pub archive_sha256: String,
    /// File name, relative to the index.
    pub file: String,
}

/// What happened to one archive.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Loaded,
    AlreadyPresent,
}

/// Reads `<dir>/index.json`.
pub fn read_index(dir: &Path) -> Result<Vec<Archive>> {
    let path = dir.join("index.json");
    let text = std::fs::read(&path).map_err(|source| DockerdError::ImageIndex {
        path: path.clone(),
        detail: source.to_string(),
    })?;
    serde_json::from_slice(&text).map_err(|e| DockerdError::ImageIndex {
        path,
        detail: e.to_string(),
    })
}

fn image_err(archive: &Archive, path: &Path, detail: String) -> DockerdError {
    DockerdError::Image {
        name: archive.name.clone(),
        path: path.to_path_buf(),
        detail,
    }
}

/// The image ID the engine has under `reference`, if any.
async fn present_id(docker: &Docker, reference: &str) -> Option<String> {
    docker
        .inspect_image(reference)
        .await
        .ok()
        .and_then(|i| i.id)
}

/// How long one `docker load` may take: a 285 MB console image under emulation, with
/// another machine on the same cores, takes more than the client's 120 s default.
pub const LOAD_WITHIN: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// `docker` with [`LOAD_WITHIN`] as its timeout, for loading image archives (the
/// timeout bounds the whole upload and load; other calls keep theirs).
pub fn for_loading(docker: &Docker) -> Docker {
    docker.clone().with_timeout(LOAD_WITHIN)
}

/// Why [`load_file`] failed.
#[derive(Debug)]
pub enum LoadFailure {
    /// The archive could not be opened.
    Open(std::io::Error),
    /// The engine refused it, or the transfer failed (bollard's error or the engine's
    /// message).
    Engine(String),
}

/// Loads the image archive at `path` (`docker load`; the engine takes gzip itself),
/// streamed in 1 MiB pieces (archives can be larger than the memory to spare), with
/// [`LOAD_WITHIN`]. Returns what the engine says it loaded ("busybox:latest", or an
/// image ID for an untagged image).
pub async fn load_file(
    docker: &Docker,
    path: &Path,
) -> std::result::Result<Vec<String>, LoadFailure> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(LoadFailure::Open)?;
    let chunks = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let options = ImportImageOptions {
        quiet: true,
        ..Default::default()
    };
    let mut stream =
        for_loading(docker).import_image(options, bollard::body_try_stream(chunks), None);
    let mut loaded = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| LoadFailure::Engine(e.to_string()))?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(LoadFailure::Engine(detail));
        }
        if let Some(s) = info.stream {
            // "Loaded image: busybox:latest" (or "Loaded image ID: sha256:...").
            if let Some((_, name)) = s.trim().split_once(": ") {
                loaded.push(name.to_string());
            }
        }
    }
    Ok(loaded)
}

/// Loads one archive after checking its sha256; skips it when the engine already has
/// the same image ID under the reference.
pub async fn load(docker: &Docker, dir: &Path, archive: &Archive) -> Result<Outcome> {
    let path: PathBuf = dir.join(&archive.file);
    if present_id(docker, &archive.reference).await.as_deref() == Some(archive.image_id.as_str()) {
        return Ok(Outcome::AlreadyPresent);
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| image_err(archive, &path, format!("cannot read it: {e}")))?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != archive.archive_sha256 {
        return Err(image_err(
            archive,
            &path,
            format!(
                "corrupt: sha256 is {actual}, the index says {}; rebuild or reinstall the OS image",
                archive.archive_sha256
            ),
        ));
    }
    let options = ImportImageOptions {
        quiet: true,
        ..Default::default()
    };
    let mut stream =
        for_loading(docker).import_image(options, bollard::body_full(bytes.into()), None);
    while let Some(item) = stream.next().await {
        let info =
            item.map_err(|e| image_err(archive, &path, format!("docker load failed: {e}")))?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(image_err(
                archive,
                &path,
                format!("docker load failed: {detail}"),
            ));
        }
    }
    match present_id(docker, &archive.reference).await {
        Some(id) if id == archive.image_id => Ok(Outcome::Loaded),
        other => Err(image_err(
            archive,
            &path,
            format!(
                "after loading, {} is {other:?}, expected {}",
                archive.reference, archive.image_id
            ),
        )),
    }
}

/// Loads every archive in `dir`'s index; one failure does not stop the others.
pub async fn load_all(docker: &Docker, dir: &Path) -> Result<Vec<(String, Result<Outcome>)>> {
    let mut results = Vec::new();
    for archive in read_index(dir)? {
        let outcome = load(docker, dir, &archive).await;
        results.push((archive.name.clone(), outcome));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_get_their_own_long_timeout_and_other_calls_keep_theirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("engine.sock");
        std::fs::write(&socket, b"").expect("a stand-in for the socket");
        let docker =
            Docker::connect_with_unix(&socket.to_string_lossy(), 120, bollard::API_DEFAULT_VERSION)
                .expect("a client (it connects at the first call)");
        assert_eq!(for_loading(&docker).timeout(), LOAD_WITHIN);
        assert_eq!(docker.timeout(), std::time::Duration::from_secs(120));
    }

    #[test]
    fn the_index_is_read_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("index.json"),
            r#"[{"name":"base","reference":"corral/base:0.1.0","image_id":"sha256:ab","archive_sha256":"cd","file":"base.tar"}]"#,
        )
        .expect("write");
        let index = read_index(dir.path()).expect("index");
        assert_eq!(index[0].reference, "corral/base:0.1.0");
        std::fs::write(dir.path().join("index.json"), "[{").expect("write");
        let err = read_index(dir.path()).expect_err("bad json");
        assert!(err.to_string().contains("index.json"), "{err}");
    }
}
