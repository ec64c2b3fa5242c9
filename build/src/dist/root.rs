//! The root: the packages unpacked, merged into one merged-/usr tree with Corral's own
//! layer on top (binaries, command links, /etc, modules, the system images' index and
//! seed), made into the squashfs root image.

use super::{made, Build, Paths, BINARIES, NOT_APPLETS};
use crate::error::{BuildError, Result};
use crate::kernel::Kernel;
use crate::progress::Step;
use crate::spec::RootfsSpec;
use crate::stage::{fresh, Fingerprint};
use crate::{deb, host, rootfs};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Unpacks the root's packages and the kernel; finds the kernel's files.
pub(super) fn unpack(b: &mut Build<'_>) -> Result<()> {
    let paths = b.paths;
    let apts = b.apts()?;
    let r = b.resolved()?;
    let mut root_debs = r.debs.clone();
    root_debs.push(r.kernel.clone());
    let step = Step::start("unpacking packages", root_debs.len() as u64);
    let mut trees = Vec::new();
    for d in &root_debs {
        step.set_detail(&d.name);
        trees.push((d.clone(), deb::unpack(&paths.cache, d, &apts.path(d))?));
        step.inc();
    }
    step.done("done");
    let kernel_tree = trees
        .iter()
        .find(|(d, _)| d.name == r.kernel.name)
        .map(|(_, t)| t.clone())
        .ok_or_else(|| BuildError::Modules {
            detail: "kernel package not unpacked".into(),
        })?;
    let kernel = Kernel::open(&kernel_tree)?;
    b.trees = trees;
    b.kernel = Some(kernel);
    Ok(())
}

/// Assembles the root (the packages merged, Corral's layer, the system images and the
/// seed) and makes the squashfs root image.
pub(super) fn root_image(b: &mut Build<'_>) -> Result<()> {
    let paths = b.paths;
    let r = b.resolved()?;
    let all = r.all();
    let kernel = b.kernel()?;
    let trees = &b.trees;
    let archives = &b.archives;
    let seed = &b.seed;
    let squashfs = b.squashfs();
    // Root image.
    let mut fp = Fingerprint::new("root");
    fp.text("version", &b.opts.version)
        .text("spec", &format!("{:?}", r.spec))
        .text("rootfs.rs", include_str!("../rootfs.rs"))
        .text("root.rs", include_str!("root.rs"))
        .text("dist", include_str!("mod.rs"));
    for d in &all {
        fp.text(&d.name, &d.sha256);
    }
    for (name, _) in BINARIES {
        fp.file(&paths.binaries.join(name))?;
    }
    for (_, a) in archives {
        fp.text(&a.name, &a.archive_sha256);
    }
    fp.text("seed", &seed.1);
    let update_root = b.update_root();
    fp.file(&update_root)?;
    let root_fp = fp.finish();
    let build_id = root_fp[..12].to_string();
    if fresh(&squashfs, &root_fp) {
        eprintln!("  {:<28} unchanged", "root image");
    } else {
        let root = paths.work.join("rootfs");
        let step = Step::start("assembling the root", trees.len() as u64);
        rootfs::create(&root, rootfs::HOST_DIRS)?;
        let mut files = 0;
        for (d, tree) in trees {
            if d.name == r.kernel.name
                || r.spec.skip.contains(&d.name)
                || r.spec.choose.contains(&d.name)
            {
                step.inc();
                continue;
            }
            step.set_detail(&d.name);
            files += rootfs::merge(&root, tree)?;
            step.inc();
        }
        rootfs::drop_paths(&root, &r.spec.drop)?;
        // ca-certificates' script never runs: the bundle the manager's https trusts.
        rootfs::ca_bundle(&root)?;
        // The build id is the root's fingerprint: the same inputs, the same id.
        corral_layer(&root, paths, &r.spec, kernel, &b.opts.version, &build_id)?;
        let trusted = fs::read(&update_root).map_err(BuildError::read(&update_root))?;
        rootfs::write(&root, super::update::ROOT_IN_IMAGE, &trusted, 0o644)?;
        // The seed's id is the root's build id: a new version seeds the system store
        // again, so no dockerd runs over a store another version wrote.
        super::images::ship_images(&root, archives, &seed.0, &build_id)?;
        step.done(&format!(
            "{files} files from {} packages",
            trees
                .len()
                .saturating_sub(r.spec.skip.len() + r.spec.choose.len() + 1)
        ));
        let step = Step::start("making the root image", 0);
        host::run(
            Command::new("mksquashfs")
                .arg(&root)
                .arg(&squashfs)
                .args(["-noappend", "-no-progress", "-quiet", "-all-root"])
                // zstd decompresses fastest of squashfs' compressors, which counts under TCG.
                .args(["-comp", "zstd", "-Xcompression-level", "15", "-b", "256K"])
                .args(["-mkfs-time", "0", "-all-time", "0", "-processors", "2"]),
        )?;
        made(step, &squashfs, &root_fp)?;
    }
    b.root_fp = root_fp;
    b.build_id = build_id;
    Ok(())
}

/// Corral's files on top of the packages: binaries, command links, /etc, modules.
fn corral_layer(
    root: &Path,
    paths: &Paths,
    spec: &RootfsSpec,
    kernel: &Kernel,
    version: &str,
    build_id: &str,
) -> Result<()> {
    for (name, dest) in BINARIES {
        let bytes = fs::read(paths.binaries.join(name))
            .map_err(BuildError::read(paths.binaries.join(name)))?;
        rootfs::write(root, dest, &bytes, 0o755)?;
    }
    for cmd in ["poweroff", "reboot", "halt"] {
        rootfs::link(root, &format!("usr/sbin/{cmd}"), "corral-init")?;
    }
    rootfs::busybox_links(root, NOT_APPLETS)?;
    rootfs::links(root, &spec.links)?;
    for (rel, content, mode) in rootfs::etc_files(version, build_id) {
        rootfs::write(root, rel, content.as_bytes(), mode)?;
    }
    rootfs::link(root, "etc/mtab", "../proc/self/mounts")?;
    rootfs::write(
        root,
        "etc/corral/modules",
        (spec.kernel.load.join("\n") + "\n").as_bytes(),
        0o644,
    )?;
    kernel.install(root, &kernel.root_modules(&spec.kernel)?)
}
