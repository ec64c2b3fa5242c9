//! The build's inputs: the package set and the kernel from `build/rootfs.yml`, the
//! bootloaders, each system image's packages; compared with (or written to) the lock.

use super::{Build, Options, Paths};
use crate::apt::{Apts, Deb, View};
use crate::error::{BuildError, Result};
use crate::image::{self, ImageSpec};
use crate::lock;
use crate::progress::Step;
use crate::spec::RootfsSpec;
use std::fs;
use std::path::{Path, PathBuf};

/// The step: resolves, and keeps apt and the result for the later steps.
pub(super) fn step(b: &mut Build<'_>) -> Result<()> {
    let (apts, r) = resolve(b.paths, b.opts)?;
    b.apts = Some(apts);
    b.resolved = Some(r);
    Ok(())
}

/// The resolved inputs of a build.
pub struct Resolved {
    pub spec: RootfsSpec,
    pub debs: Vec<Deb>,
    pub kernel: Deb,
    /// Each system image: its folder, spec and packages.
    pub images: Vec<(PathBuf, ImageSpec, Vec<Deb>)>,
    /// The boot media's packages (`bootloaders` in rootfs.yml) with their dependencies.
    pub boot: Vec<Deb>,
}

impl Resolved {
    /// Every package the build uses, each once.
    pub fn all(&self) -> Vec<Deb> {
        let mut all: Vec<Deb> = self.debs.clone();
        all.push(self.kernel.clone());
        all.extend(self.boot.iter().cloned());
        for (_, _, debs) in &self.images {
            all.extend(debs.iter().cloned());
        }
        all.sort();
        all.dedup();
        all
    }
}

/// Resolves the package set and the kernel, and compares them with the lock file.
pub fn resolve(paths: &Paths, opts: &Options) -> Result<(Apts, Resolved)> {
    let lock_path = paths.repo.join("build/packages.lock");
    let locked = fs::read_to_string(&lock_path).map(|t| lock::parse(&t)).ok();
    resolve_with(paths, opts, &lock_path, locked.as_ref()).map_err(|e| match (e, &locked) {
        (BuildError::NotInSuite { package, suite, .. }, Some(l)) => BuildError::NotInSuite {
            locked: lock::describe(l, &suite, &package),
            package,
            suite,
        },
        (e, _) => e,
    })
}

fn resolve_with(
    paths: &Paths,
    opts: &Options,
    lock_path: &Path,
    locked: Option<&std::collections::BTreeMap<lock::Key, lock::Entry>>,
) -> Result<(Apts, Resolved)> {
    let mut spec = RootfsSpec::load(&paths.repo.join("build/rootfs.yml"))?;
    if let Some(flavour) = &opts.kernel_flavour {
        spec.kernel.flavour = flavour.clone();
    }
    let meta = spec.kernel.metapackage()?;
    let apts = Apts::new(&paths.cache, opts.update_lock)?;
    let step = Step::start("resolving packages", 0);
    let apt = apts.view(View::of(spec.suite))?;
    let wanted: Vec<String> = spec.packages.iter().chain(&spec.choose).cloned().collect();
    let debs = apt.resolve(&wanted, &[])?;
    let suffix = format!("-{}-amd64", spec.kernel.flavour);
    let kernel = apt
        .resolve(std::slice::from_ref(&meta), &[])?
        .into_iter()
        .find(|d| {
            d.name != meta && d.name.starts_with("linux-image-6") && d.name.ends_with(&suffix)
        })
        .ok_or_else(|| BuildError::Resolve {
            packages: meta.clone(),
            suite: spec.suite.name().into(),
            detail: "apt did not resolve it to a linux-image-<version> package".into(),
        })?;
    let boot = if spec.bootloaders.is_empty() {
        Vec::new()
    } else {
        apt.resolve(&spec.bootloaders, &[])?
    };
    let images = resolve_images(&apts, &paths.repo.join("images"))?;
    let r = Resolved {
        spec,
        debs,
        kernel,
        images,
        boot,
    };
    let all = r.all();
    step.done(&format!(
        "{} packages, kernel {}, {} images",
        all.len(),
        r.kernel.name,
        r.images.len()
    ));
    match locked {
        Some(locked) if !opts.update_lock => {
            let drift = lock::drift(locked, &all);
            if !drift.is_empty() {
                if opts.locked {
                    return Err(BuildError::Locked {
                        drift: drift.join("\n"),
                    });
                }
                eprintln!(
                    "warning: packages differ from build/packages.lock (run `corral-build lock` to record them):\n  {}",
                    drift.join("\n  ")
                );
            }
        }
        _ => {
            fs::write(lock_path, lock::render(&all)).map_err(BuildError::write(lock_path))?;
            eprintln!("  wrote {}", lock_path.display());
        }
    }
    Ok((apts, r))
}

/// Every image folder in `dir` with its spec and its resolved packages.
pub(super) fn resolve_images(
    apts: &Apts,
    dir: &Path,
) -> Result<Vec<(PathBuf, ImageSpec, Vec<Deb>)>> {
    let mut images = Vec::new();
    for folder in image::list(dir)? {
        let spec = ImageSpec::load(&folder)?;
        let debs = image::resolve(apts, &spec)?;
        images.push((folder, spec, debs));
    }
    Ok(images)
}
