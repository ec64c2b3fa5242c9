//! Docker image archives without a Docker daemon: one layer tar made from a directory
//! (entries sorted, owner 0, mtime 0, so the same tree always gives the same bytes), an
//! image config whose `diff_ids` name that layer, and the `docker save` layout
//! (`manifest.json`, `<config digest>.json`, `<layer digest>/layer.tar`) that
//! `docker load` reads.

use crate::error::{BuildError, Result};
use crate::image::RuntimeConfig;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// Every path under `root`, relative, sorted, parents before children.
fn walk(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(root.join(&rel))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names.into_iter().rev() {
            let child = rel.join(name);
            if fs::symlink_metadata(root.join(&child))?.is_dir() {
                stack.push(child.clone());
            }
            out.push(child);
        }
    }
    out.sort();
    Ok(out)
}

/// Writes `root` as a layer tar to `out`; returns its sha256 (the layer's diff id).
pub fn write_layer(root: &Path, out: &Path) -> Result<String> {
    let fail = |e: io::Error| BuildError::Write {
        path: out.to_path_buf(),
        source: e,
    };
    let file = File::create(out).map_err(fail)?;
    let mut builder = tar::Builder::new(Hashing {
        inner: io::BufWriter::new(file),
        hash: Sha256::new(),
    });
    for rel in walk(root).map_err(fail)? {
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(fail)?;
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(fail)?;
            let mut h = header(tar::EntryType::Symlink, 0o777, 0);
            builder.append_link(&mut h, &rel, &target).map_err(fail)?;
        } else if ft.is_dir() {
            let mut h = header(tar::EntryType::Directory, mode, 0);
            builder
                .append_data(&mut h, &rel, io::empty())
                .map_err(fail)?;
        } else if ft.is_file() {
            let mut h = header(tar::EntryType::Regular, mode, meta.size());
            let data = File::open(&path).map_err(fail)?;
            builder.append_data(&mut h, &rel, data).map_err(fail)?;
        }
        // Sockets, fifos and device nodes have no place in an image layer.
    }
    let mut w = builder.into_inner().map_err(fail)?;
    w.flush().map_err(fail)?;
    Ok(hex::encode(w.hash.finalize()))
}

#[derive(Serialize)]
struct ContainerConfig<'a> {
    #[serde(rename = "Env")]
    env: Vec<String>,
    #[serde(rename = "Entrypoint", skip_serializing_if = "<[String]>::is_empty")]
    entrypoint: &'a [String],
    #[serde(rename = "Cmd", skip_serializing_if = "<[String]>::is_empty")]
    cmd: &'a [String],
    #[serde(rename = "WorkingDir")]
    workdir: &'a str,
    #[serde(rename = "User")]
    user: &'a str,
    #[serde(rename = "Labels")]
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ImageConfig<'a> {
    architecture: &'static str,
    os: &'static str,
    created: &'static str,
    config: ContainerConfig<'a>,
    rootfs: RootFs,
    history: Vec<BTreeMap<&'static str, &'static str>>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct ManifestEntry<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<&'a str>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The image config JSON for one layer. Fixed `created` keeps digests reproducible.
pub fn config_json(runtime: &RuntimeConfig, layer_digest: &str) -> Vec<u8> {
    let env = runtime
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let config = ImageConfig {
        architecture: "amd64",
        os: "linux",
        created: "1970-01-01T00:00:00Z",
        config: ContainerConfig {
            env,
            entrypoint: &runtime.entrypoint,
            cmd: &runtime.cmd,
            workdir: runtime.workdir.as_deref().unwrap_or("/"),
            user: runtime.user.as_deref().unwrap_or(""),
            labels: &runtime.labels,
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: vec![format!("sha256:{layer_digest}")],
        },
        history: vec![BTreeMap::from([
            ("created", "1970-01-01T00:00:00Z"),
            ("created_by", "corral-build"),
        ])],
    };
    serde_json::to_vec(&config).unwrap_or_default()
}

/// A built archive: where it is, and the digests a loader checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Built {
    pub reference: String,
    /// `sha256:<hex>` of the config: the image ID `docker load` reports.
    pub image_id: String,
    /// sha256 of the archive file itself.
    pub archive_sha256: String,
    pub archive: PathBuf,
}

/// Writes `<work>/<name>.tar`, a docker-archive of the tree at `root`.
pub fn build(
    root: &Path,
    runtime: &RuntimeConfig,
    reference: &str,
    work: &Path,
    name: &str,
) -> Result<Built> {
    let fail = |p: &Path| BuildError::write(p.to_path_buf());
    let stage = work.join(format!("{name}.archive"));
    if stage.exists() {
        fs::remove_dir_all(&stage).map_err(fail(&stage))?;
    }
    fs::create_dir_all(&stage).map_err(fail(&stage))?;
    let layer_tmp = stage.join("layer.tar");
    let layer = write_layer(root, &layer_tmp)?;
    let layer_dir = stage.join(&layer);
    fs::create_dir_all(&layer_dir).map_err(fail(&layer_dir))?;
    fs::rename(&layer_tmp, layer_dir.join("layer.tar")).map_err(fail(&layer_dir))?;
    let config = config_json(runtime, &layer);
    let config_hex = hex::encode(Sha256::digest(&config));
    let config_file = stage.join(format!("{config_hex}.json"));
    fs::write(&config_file, &config).map_err(fail(&config_file))?;
    let manifest = vec![ManifestEntry {
        config: format!("{config_hex}.json"),
        repo_tags: vec![reference],
        layers: vec![format!("{layer}/layer.tar")],
    }];
    let manifest_file = stage.join("manifest.json");
    fs::write(
        &manifest_file,
        serde_json::to_vec(&manifest).unwrap_or_default(),
    )
    .map_err(fail(&manifest_file))?;
    let archive = work.join(format!("{name}.tar"));
    write_layer(&stage, &archive)?;
    fs::remove_dir_all(&stage).map_err(fail(&stage))?;
    Ok(Built {
        reference: reference.to_string(),
        image_id: format!("sha256:{config_hex}"),
        archive_sha256: crate::apt::sha256_file(&archive)?,
        archive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree(dir: &Path) {
        fs::create_dir_all(dir.join("usr/bin")).expect("mkdir");
        fs::write(dir.join("usr/bin/tool"), "#!/bin/sh\necho hi\n").expect("write");
        fs::set_permissions(dir.join("usr/bin/tool"), fs::Permissions::from_mode(0o755))
            .expect("chmod");
        symlink("usr/bin", dir.join("bin")).expect("symlink");
    }

    #[test]
    fn the_same_tree_gives_the_same_digests() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        tree(&a);
        tree(&b);
        // Different timestamps on the files must not matter.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        fs::write(b.join("usr/bin/tool"), "#!/bin/sh\necho hi\n").expect("rewrite");
        let cfg = RuntimeConfig {
            cmd: vec!["tool".into()],
            ..Default::default()
        };
        let one = build(&a, &cfg, "corral/t:1", &tmp.path().join("w1"), "t").expect("build");
        let two = build(&b, &cfg, "corral/t:1", &tmp.path().join("w2"), "t").expect("build");
        assert_eq!(one.image_id, two.image_id);
        assert_eq!(one.archive_sha256, two.archive_sha256);
        fs::write(b.join("usr/bin/tool"), "changed").expect("change");
        let three = build(&b, &cfg, "corral/t:1", &tmp.path().join("w3"), "t").expect("build");
        assert_ne!(one.image_id, three.image_id, "content changes the image");
    }

    #[test]
    fn the_archive_has_docker_saves_layout() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        tree(&root);
        let cfg = RuntimeConfig::default();
        let built = build(&root, &cfg, "corral/t:1", tmp.path(), "t").expect("build");
        let mut archive = tar::Archive::new(File::open(&built.archive).expect("open"));
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                e.expect("entry")
                    .path()
                    .expect("path")
                    .display()
                    .to_string()
            })
            .collect();
        let config = format!("{}.json", built.image_id.trim_start_matches("sha256:"));
        assert!(names.contains(&"manifest.json".to_string()), "{names:?}");
        assert!(names.contains(&config), "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("/layer.tar")), "{names:?}");
    }

    #[test]
    fn config_names_its_layer_and_runtime() {
        let cfg = RuntimeConfig {
            entrypoint: vec!["/usr/sbin/sshd".into()],
            env: BTreeMap::from([("PATH".to_string(), "/usr/bin".to_string())]),
            ..Default::default()
        };
        let json: serde_json::Value =
            serde_json::from_slice(&config_json(&cfg, "ab")).expect("json");
        assert_eq!(json["rootfs"]["diff_ids"][0], "sha256:ab");
        assert_eq!(json["config"]["Entrypoint"][0], "/usr/sbin/sshd");
        assert_eq!(json["config"]["Env"][0], "PATH=/usr/bin");
        assert!(json["config"].get("Cmd").is_none());
    }
}
