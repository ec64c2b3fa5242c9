//! The images: the system images built from `images/` with the seeded image store
//! made from them (corral-dockerd's seed), and the test images from `tests/images/`.

use super::resolve::resolve_images;
use super::{fetch, size, Build, Paths, VERSION};
use crate::apt::{Apts, Deb};
use crate::error::{BuildError, Result};
use crate::host;
use crate::image;
use crate::progress::Step;
use crate::stage::{fresh, mark, Fingerprint};
use corral_dockerd::images::{Archive as ImageArchive, IMAGES_DIR};
use corral_dockerd::seed::{self, SEED_DIR};
use std::fs;
use std::path::{Path, PathBuf};

/// Builds the system images (shipped in the root, loaded by the manager at boot) and
/// seeds an image store with them.
pub(super) fn system_images(b: &mut Build<'_>) -> Result<()> {
    let paths = b.paths;
    let apts = b.apts()?;
    let r = b.resolved()?;
    let step = Step::start("building system images", r.images.len() as u64);
    let inputs = image::ImageInputs {
        apts,
        cache: &paths.cache,
        work: &paths.work.join("images"),
        binaries: &paths.binaries,
        version: VERSION,
    };
    let mut archives = Vec::new();
    let mut beside = Vec::new();
    for (dir, spec, debs) in &r.images {
        step.set_detail(&spec.name);
        let built = image::build(&inputs, dir, spec, debs)?;
        if spec.dist_only {
            // Copied, never linked: a later build must not rewrite a shipped archive.
            let out = paths.dist.join(format!("{}.tar", spec.name));
            if !fresh_copy(&built.archive, &out) {
                fs::copy(&built.archive, &out).map_err(BuildError::write(&out))?;
            }
            beside.push(out);
            step.inc();
            continue;
        }
        archives.push((
            built.archive.clone(),
            ImageArchive {
                name: spec.name.clone(),
                reference: built.reference,
                image_id: built.image_id,
                archive_sha256: built.archive_sha256,
                file: format!("{}.tar", spec.name),
            },
        ));
        step.inc();
    }
    let images_size: u64 = archives.iter().map(|(p, _)| size(p)).sum();
    let names: Vec<&str> = archives.iter().map(|(_, a)| a.name.as_str()).collect();
    step.done(&format!(
        "{} ({:.1} MB)",
        names.join(", "),
        images_size as f64 / 1e6
    ));
    for out in &beside {
        println!(
            "  {} ({:.1} MB): an image machines load when asked (docs/consoles.md)",
            out.display(),
            size(out) as f64 / 1e6
        );
    }
    b.seed = seed_store(paths, &archives)?;
    b.archives = archives;
    b.dist_images = beside;
    Ok(())
}

/// Whether `out` is already a copy of `archive` (same size, not older).
fn fresh_copy(archive: &Path, out: &Path) -> bool {
    match (fs::metadata(archive), fs::metadata(out)) {
        (Ok(a), Ok(o)) => {
            a.len() == o.len()
                && matches!((a.modified(), o.modified()), (Ok(am), Ok(om)) if om >= am)
        }
        _ => false,
    }
}

/// Builds every image under `tests/images/` (images the end-to-end tests load into the
/// user engine, not part of the OS) into `<work>/test-images/<name>.tar`. Returns the
/// archives with their references.
pub fn test_images(paths: &Paths) -> Result<Vec<crate::docker_archive::Built>> {
    let apts = Apts::new(&paths.cache, false)?;
    let specs = resolve_images(&apts, &paths.repo.join("tests/images"))?;
    let all: Vec<Deb> = specs.iter().flat_map(|(_, _, d)| d.clone()).collect();
    fetch(&apts, &all, paths)?;
    let work = paths.work.join("test-images");
    let inputs = image::ImageInputs {
        apts: &apts,
        cache: &paths.cache,
        work: &work,
        binaries: &paths.binaries,
        version: VERSION,
    };
    let step = Step::start("building test images", specs.len() as u64);
    let mut out = Vec::new();
    for (dir, spec, debs) in &specs {
        step.set_detail(&spec.name);
        out.push(image::build(&inputs, dir, spec, debs)?);
        step.inc();
    }
    step.done(&work.display().to_string());
    Ok(out)
}

/// Writes `index.json` for the archives into `dir`.
fn write_index(dir: &Path, archives: &[(PathBuf, ImageArchive)]) -> Result<()> {
    let index: Vec<&ImageArchive> = archives.iter().map(|(_, a)| a).collect();
    let json = serde_json::to_vec_pretty(&index).unwrap_or_default();
    fs::create_dir_all(dir).map_err(BuildError::write(dir))?;
    let path = dir.join("index.json");
    fs::write(&path, json).map_err(BuildError::write(path))
}

/// Loads the archives into a private dockerd on the build host and keeps its image
/// store (see `corral_dockerd::seed`). Returns the store and its fingerprint.
fn seed_store(paths: &Paths, archives: &[(PathBuf, ImageArchive)]) -> Result<(PathBuf, String)> {
    let images = paths.work.join("images");
    write_index(&images, archives)?;
    let out = paths.work.join("seed");
    let mut fp = Fingerprint::new("seed");
    fp.text("seed.rs", include_str!("../../../dockerd/src/seed.rs"));
    for (_, a) in archives {
        fp.text(&a.name, &a.image_id);
    }
    let fingerprint = fp.finish();
    if fresh(&out, &fingerprint) {
        return Ok((out, fingerprint));
    }
    let step = Step::start("seeding the image store", 0);
    host::require("dockerd")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BuildError::write(&out))?;
    // A short path: dockerd's and containerd's sockets live under it, and a unix socket
    // path must fit in 108 bytes, which a deep checkout would not leave room for.
    let scratch = std::env::temp_dir().join(format!("corral-seed-{}", std::process::id()));
    runtime
        .block_on(seed::make(&images, &scratch, &out))
        .map_err(|e| BuildError::Seed {
            detail: e.to_string(),
        })?;
    mark(&out, &fingerprint)?;
    step.done(&format!("{}", out.display()));
    Ok((out, fingerprint))
}

/// Puts the image index and the seeded store into the root, with the room the store's
/// copy takes ([`seed::FOOTPRINT_FILE`]). The archives themselves stay out: the seed
/// holds the same images, and the ISO has a size budget.
pub(super) fn ship_images(
    root: &Path,
    archives: &[(PathBuf, ImageArchive)],
    seed_dir: &Path,
    seed_id: &str,
) -> Result<()> {
    write_index(&root.join(IMAGES_DIR.trim_start_matches('/')), archives)?;
    let dest = root.join(SEED_DIR.trim_start_matches('/'));
    let seed_err = |e: corral_dockerd::DockerdError| BuildError::Seed {
        detail: e.to_string(),
    };
    seed::copy_tree(seed_dir, &dest).map_err(seed_err)?;
    // What its copy takes on a state partition, checked at boot before copying.
    let mut room = 0;
    for part in seed::PARTS {
        room += seed::footprint(&dest.join(part)).map_err(seed_err)?;
    }
    let file = dest.join(seed::FOOTPRINT_FILE);
    std::fs::write(&file, format!("{room}\n")).map_err(BuildError::write(&file))?;
    // What the seed is: a state partition seeded by another version is seeded again.
    let id = dest.join(seed::ID_FILE);
    std::fs::write(&id, format!("{seed_id}\n")).map_err(BuildError::write(&id))?;
    Ok(())
}
