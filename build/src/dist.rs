//! `corral-build dist`: Debian packages in, `dist/` out. Each stage is skipped when its
//! inputs are unchanged (see [`crate::stage`]), so a second build after a small change
//! redoes only what that change touches.

use crate::apt::{Apts, Deb, View};
use crate::cpio::{Archive, Node};
use crate::error::{BuildError, Result};
use crate::image::{self, ImageSpec};
use crate::kernel::Kernel;
use crate::manifest::{Artifact, Manifest};
use crate::progress::Step;
use crate::spec::RootfsSpec;
use crate::stage::{fresh, mark, Fingerprint};
use crate::{deb, host, lock, rootfs};
use corral_dockerd::images::{Archive as ImageArchive, IMAGES_DIR};
use corral_dockerd::seed::{self, SEED_DIR};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Corral's version, in /etc/os-release and the manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The kernel command line both boot menus pass. ttyS0 is last, so it is /dev/console:
/// what QEMU's serial, EC2's get-console-output and the harness read.
///
/// `tsc=reliable`: without it, Debian 13's 6.12 kernel under QEMU's TCG (2 vCPUs) finds
/// the TSC "unstable" a few seconds into the boot, flips the sched_clock static key while
/// both CPUs run the scheduler, and dies of an `Oops: int3` in sched_clock_cpu (seen
/// here in the first boot on trixie). On EC2's Nitro and KVM the TSC is invariant and
/// AWS recommends this option for it; the clocksource watchdog it turns off only guards
/// against broken hardware TSCs.
///
/// `apparmor=0`: Corral ships no AppArmor tools or profiles (docs/user-engine.md,
/// "Confinement"). Debian's kernel turns AppArmor on, and a dockerd that sees it
/// (securityfs mounted) loads its docker-default profile with apparmor_parser before
/// containers start, which no Corral image has; so AppArmor is off, not merely unseen.
/// Containers are confined by namespaces, dropped capabilities, Docker's default seccomp
/// profile and cgroups.
pub const CMDLINE: &str = "console=tty0 console=ttyS0,115200n8 tsc=reliable apparmor=0";

/// Corral's own binaries in the root: (built binary, path in the root).
const BINARIES: &[(&str, &str)] = &[
    ("corral-init", "usr/sbin/corral-init"),
    ("corral-manager", "usr/bin/corral-manager"),
    // The CLI on the host too (a debug or recovery shell), as in the console.
    ("corral", "usr/bin/corral"),
];

/// Busybox applets that must not be linked: PID 1's own commands stop the machine.
const NOT_APPLETS: &[&str] = &["init", "linuxrc", "poweroff", "reboot", "halt"];

/// Where things are.
pub struct Paths {
    pub repo: PathBuf,
    /// Downloaded and unpacked packages, shared by builds (~/.cache/corral).
    pub cache: PathBuf,
    /// Intermediate outputs (target/corral).
    pub work: PathBuf,
    /// Static musl builds of Corral's binaries.
    pub binaries: PathBuf,
    pub dist: PathBuf,
}

pub struct Options {
    /// Overrides kernel.flavour from build/rootfs.yml.
    pub kernel_flavour: Option<String>,
    /// Fail instead of warn when packages drift from build/packages.lock.
    pub locked: bool,
    /// Rewrite build/packages.lock with what apt resolved.
    pub update_lock: bool,
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

/// Builds everything into `dist/`.
pub fn dist(paths: &Paths, opts: &Options) -> Result<Manifest> {
    for (tool, _) in host::TOOLS {
        host::require(tool)?;
    }
    for (name, _) in BINARIES {
        let bin = paths.binaries.join(name);
        if !bin.exists() {
            return Err(BuildError::Spec {
                path: bin,
                detail: "missing; build it with `make dist` (cargo build --profile image --target x86_64-unknown-linux-musl)".into(),
            });
        }
    }
    fs::create_dir_all(&paths.work).map_err(BuildError::write(&paths.work))?;
    fs::create_dir_all(&paths.dist).map_err(BuildError::write(&paths.dist))?;
    let (apts, r) = resolve(paths, opts)?;
    let all = r.all();

    fetch(&apts, &all, paths)?;

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

    // System images, shipped in the root and loaded by the manager at boot.
    let step = Step::start("building system images", r.images.len() as u64);
    let inputs = image::ImageInputs {
        apts: &apts,
        cache: &paths.cache,
        work: &paths.work.join("images"),
        binaries: &paths.binaries,
        version: VERSION,
    };
    let mut archives = Vec::new();
    for (dir, spec, debs) in &r.images {
        step.set_detail(&spec.name);
        let built = image::build(&inputs, dir, spec, debs)?;
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
    let seed = seed_store(paths, &archives)?;

    // Root image.
    let squashfs = paths.work.join("root.squashfs");
    let mut fp = Fingerprint::new("root");
    fp.text("version", VERSION)
        .text("spec", &format!("{:?}", r.spec))
        .text("rootfs.rs", include_str!("rootfs.rs"))
        .text("dist.rs", include_str!("dist.rs"));
    for d in &all {
        fp.text(&d.name, &d.sha256);
    }
    for (name, _) in BINARIES {
        fp.file(&paths.binaries.join(name))?;
    }
    for (_, a) in &archives {
        fp.text(&a.name, &a.archive_sha256);
    }
    fp.text("seed", &seed.1);
    let root_fp = fp.finish();
    if fresh(&squashfs, &root_fp) {
        eprintln!("  {:<28} unchanged", "root image");
    } else {
        let root = paths.work.join("rootfs");
        let step = Step::start("assembling the root", trees.len() as u64);
        rootfs::create(&root, rootfs::HOST_DIRS)?;
        let mut files = 0;
        for (d, tree) in &trees {
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
        // The build id is the root's fingerprint: the same inputs, the same id.
        corral_layer(&root, paths, &r.spec, &kernel, &root_fp[..12])?;
        ship_images(&root, &archives, &seed.0)?;
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

    // Initrd.
    let initrd = paths.dist.join("initrd");
    let busybox = trees
        .iter()
        .find(|(d, _)| d.name == "busybox-static")
        // usr/bin in Debian 13's merged-/usr package, bin before.
        .and_then(|(_, t)| {
            ["usr/bin/busybox", "bin/busybox"]
                .iter()
                .map(|p| t.join(p))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| BuildError::Spec {
            path: paths.repo.join("build/rootfs.yml"),
            detail: "busybox-static must be in packages (the initrd's recovery shell)".into(),
        })?;
    let boot_modules = kernel.boot_modules(&r.spec.kernel)?;
    let mut fp = Fingerprint::new("initrd");
    fp.text("root", &root_fp)
        .text("modules", &boot_modules.join(","))
        .text("dist.rs", include_str!("dist.rs"));
    fp.file(&paths.binaries.join("corral-init"))?;
    let initrd_fp = fp.finish();
    if fresh(&initrd, &initrd_fp) {
        eprintln!("  {:<28} unchanged", "initrd");
    } else {
        let step = Step::start("making the initrd", 0);
        let mut a = Archive::default();
        a.add(
            "init",
            0o755,
            Node::File(paths.binaries.join("corral-init")),
        );
        a.add("bin/busybox", 0o755, Node::File(busybox));
        a.add("bin/sh", 0o777, Node::Symlink("busybox".into()));
        a.add("dev/console", 0o600, Node::CharDev { major: 5, minor: 1 });
        a.add("dev/null", 0o666, Node::CharDev { major: 1, minor: 3 });
        a.add(
            "dev/kmsg",
            0o644,
            Node::CharDev {
                major: 1,
                minor: 11,
            },
        );
        for dir in ["proc", "sys", "run", "sysroot", "tmp"] {
            a.add(dir, 0o755, Node::Dir);
        }
        let names: Vec<String> = r.spec.kernel.boot.clone();
        a.add(
            "etc/corral/modules.boot",
            0o644,
            Node::Data((names.join("\n") + "\n").into_bytes()),
        );
        let mdir = format!("lib/modules/{}", kernel.release);
        a.add(
            &format!("{mdir}/modules.dep"),
            0o644,
            Node::Data(kernel.dep_lines(&boot_modules)?.into_bytes()),
        );
        let builtin = kernel.modules_dir.join("modules.builtin");
        a.add(
            &format!("{mdir}/modules.builtin"),
            0o644,
            Node::File(builtin),
        );
        for m in &boot_modules {
            a.add(
                &format!("{mdir}/{m}"),
                0o644,
                Node::File(kernel.modules_dir.join(m)),
            );
        }
        a.add("root.squashfs", 0o644, Node::File(squashfs.clone()));
        a.write_to(&initrd)?;
        made(step, &initrd, &initrd_fp)?;
    }

    let vmlinuz = paths.dist.join("vmlinuz");
    fs::copy(&kernel.vmlinuz, &vmlinuz).map_err(BuildError::write(&vmlinuz))?;

    // What the boot media are made with: the stamp of the unpacked folder and a part of
    // the ISO's and the disk image's fingerprints.
    let boot_debs: String = r
        .boot
        .iter()
        .map(|d| format!("{} {}\n", d.name, d.sha256))
        .collect();
    let tools = boot_tools(paths, &apts, &r.boot, &boot_debs)?;

    // ISO.
    let iso = paths.dist.join("corral.iso");
    let mut fp = Fingerprint::new("iso");
    fp.text("boot packages", &boot_debs)
        .text("initrd", &initrd_fp)
        .text("kernel", &r.kernel.sha256)
        .text("cmdline", CMDLINE)
        .text("iso", include_str!("../../iso/src/lib.rs"))
        .text("kit", include_str!("../../iso/src/disk.rs"));
    let iso_fp = fp.finish();
    if fresh(&iso, &iso_fp) {
        eprintln!("  {:<28} unchanged", "ISO");
    } else {
        let step = Step::start("making the ISO", 0);
        corral_iso::build(&corral_iso::IsoInputs {
            kernel: &vmlinuz,
            initrd: &initrd,
            cmdline: CMDLINE,
            work: &paths.work.join("iso"),
            output: &iso,
            tools: &tools,
        })?;
        made(step, &iso, &iso_fp)?;
    }

    // The raw disk image (BIOS and UEFI, slots A and B, state), for disks and EC2.
    let img = paths.dist.join("corral.img");
    let mut fp = Fingerprint::new("disk");
    fp.text("boot packages", &boot_debs)
        .text("initrd", &initrd_fp)
        .text("kernel", &r.kernel.sha256)
        .text("cmdline", CMDLINE)
        .text("disk", include_str!("../../iso/src/disk.rs"))
        .text("layout", include_str!("../../disk/src/layout.rs"))
        .text("gpt", include_str!("../../disk/src/gpt.rs"))
        .text("bios", include_str!("../../disk/src/bios.rs"));
    let img_fp = fp.finish();
    if fresh(&img, &img_fp) {
        eprintln!("  {:<28} unchanged", "disk image");
    } else {
        let step = Step::start("making the disk image", 0);
        let mut seed = [0u8; 16];
        for (s, b) in seed
            .iter_mut()
            .zip(hex::decode(&img_fp).unwrap_or_default())
        {
            *s = b;
        }
        corral_iso::disk::build_disk(&corral_iso::disk::DiskInputs {
            kernel: &vmlinuz,
            initrd: &initrd,
            cmdline: CMDLINE,
            seed,
            work: &paths.work.join("disk"),
            output: &img,
            tools: &tools,
        })?;
        made(step, &img, &img_fp)?;
    }

    let mut manifest = Manifest::new(VERSION, &kernel.release, CMDLINE, &all);
    manifest.images = archives.iter().map(|(_, a)| a.clone()).collect();
    for p in [&iso, &img, &vmlinuz, &initrd, &squashfs] {
        manifest.artifacts.push(Artifact::of(p)?);
    }
    manifest.write(&paths.dist.join("manifest.json"))?;
    Ok(manifest)
}

/// The boot media's packages unpacked into one folder (`boot-tools` in the work
/// folder), remade when `listing` (their names and sha256s) changes, for
/// [`corral_iso::Tools`].
fn boot_tools(
    paths: &Paths,
    apts: &Apts,
    debs: &[Deb],
    listing: &str,
) -> Result<corral_iso::Tools> {
    let dir = paths.work.join("boot-tools");
    let stamp = paths.work.join("boot-tools.stamp");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(listing) {
        let step = Step::start("unpacking the bootloaders", debs.len() as u64);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(BuildError::write(&dir))?;
        }
        fs::create_dir_all(&dir).map_err(BuildError::write(&dir))?;
        for d in debs {
            step.set_detail(&d.name);
            let tree = deb::unpack(&paths.cache, d, &apts.path(d))?;
            rootfs::merge(&dir, &tree)?;
            step.inc();
        }
        fs::write(&stamp, listing).map_err(BuildError::write(&stamp))?;
        step.done(&format!("{} packages in {}", debs.len(), dir.display()));
    }
    Ok(corral_iso::Tools::unpacked(&dir)?)
}

/// Ends a stage: records its fingerprint next to `output` and reports path and size.
fn made(step: Step, output: &Path, fingerprint: &str) -> Result<()> {
    mark(output, fingerprint)?;
    step.done(&format!(
        "{} ({:.1} MB)",
        output.display(),
        size(output) as f64 / 1e6
    ));
    Ok(())
}

fn size(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Corral's files on top of the packages: binaries, command links, /etc, modules.
fn corral_layer(
    root: &Path,
    paths: &Paths,
    spec: &RootfsSpec,
    kernel: &Kernel,
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
    for (rel, content, mode) in rootfs::etc_files(VERSION, build_id) {
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

/// Every image folder in `dir` with its spec and its resolved packages.
fn resolve_images(apts: &Apts, dir: &Path) -> Result<Vec<(PathBuf, ImageSpec, Vec<Deb>)>> {
    let mut images = Vec::new();
    for folder in image::list(dir)? {
        let spec = ImageSpec::load(&folder)?;
        let debs = image::resolve(apts, &spec)?;
        images.push((folder, spec, debs));
    }
    Ok(images)
}

/// Fetches `debs` into the cache with a progress line.
fn fetch(apts: &Apts, debs: &[Deb], paths: &Paths) -> Result<()> {
    let step = Step::start("fetching packages", debs.len() as u64);
    apts.fetch_all(debs, &|d| {
        step.set_detail(&d.name);
        step.inc();
    })?;
    let total: u64 = debs.iter().map(|d| d.size).sum();
    step.done(&format!(
        "{} packages, {:.1} MB, in {}",
        debs.len(),
        total as f64 / 1e6,
        paths.cache.join("debs").display()
    ));
    Ok(())
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
    fp.text("seed.rs", include_str!("../../dockerd/src/seed.rs"));
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

/// Puts the image index and the seeded store into the root. The archives themselves
/// stay out: the seed holds the same images, and the ISO has a size budget.
fn ship_images(root: &Path, archives: &[(PathBuf, ImageArchive)], seed_dir: &Path) -> Result<()> {
    write_index(&root.join(IMAGES_DIR.trim_start_matches('/')), archives)?;
    let dest = root.join(SEED_DIR.trim_start_matches('/'));
    seed::copy_tree(seed_dir, &dest).map_err(|e| BuildError::Seed {
        detail: e.to_string(),
    })?;
    Ok(())
}
