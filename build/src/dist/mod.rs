//! `corral-build dist`: Debian packages in, `dist/` out, as a table of named steps
//! ([`STEPS`], walked by [`dist`]). Each step reads what earlier ones left in [`Build`]
//! and is skipped when its inputs are unchanged (see [`crate::stage`]), so a second
//! build after a small change redoes only what that change touches.
//!
//! - `resolve`: the package set, the kernel, the system images' packages, the lock.
//! - `images`: the system images, the seeded image store, the test images.
//! - `root`: the packages unpacked, the root assembled with Corral's layer, squashfs.
//! - `initrd`: `/init`, busybox, device nodes and boot modules (`dist/initrd`); the same
//!   with the root image (`dist/initrd-pxe`).
//! - `media`: the bootloaders unpacked, the ISO, the raw disk image.

mod images;
mod initrd;
mod media;
mod resolve;
mod root;
pub mod update;

pub use images::test_images;
pub use resolve::{resolve, Resolved};

use crate::apt::{Apts, Deb};
use crate::error::{BuildError, Result};
use crate::host;
use crate::kernel::Kernel;
use crate::manifest::{Artifact, Manifest};
use crate::progress::Step;
use crate::stage::mark;
use corral_dockerd::images::Archive as ImageArchive;
use std::fs;
use std::path::{Path, PathBuf};

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
///
/// `panic=10`: a kernel panic reboots the machine after 10 s (time for the reason to
/// reach the console) instead of hanging it for good; with boot slots, a reboot is also
/// how a bad update gets rolled back. PID 1 itself never panics (docs/boot.md).
pub const CMDLINE: &str = "console=tty0 console=ttyS0,115200n8 tsc=reliable apparmor=0 panic=10";

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
    /// Corral's version (`make dist VERSION=x.y.z`): os-release, `corral os version`,
    /// the manifest and the update. [`VERSION`] when not given.
    pub version: String,
    /// The key to sign with when `CORRAL_SIGNING_KEY` names none; else the development
    /// key in the dist folder.
    pub signing_key: Option<PathBuf>,
    /// Words added to [`CMDLINE`] in the boot menus and the update's `boot.env` (the
    /// upgrade tests build a release whose console cannot start this way).
    pub cmdline_extra: Option<String>,
}

/// What the steps hand on to later ones. A step that needs what an earlier one makes
/// asks through an accessor, which is an error (never a panic) if the table's order
/// were wrong.
pub struct Build<'a> {
    pub paths: &'a Paths,
    pub opts: &'a Options,
    apts: Option<Apts>,
    resolved: Option<Resolved>,
    /// Each root package with the folder it was unpacked into.
    trees: Vec<(Deb, PathBuf)>,
    kernel: Option<Kernel>,
    /// The system images' archives and their index entries.
    archives: Vec<(PathBuf, ImageArchive)>,
    /// The images shipped beside the root (`dist_only`): `dist/<name>.tar`.
    dist_images: Vec<PathBuf>,
    /// The seeded image store and its fingerprint.
    seed: (PathBuf, String),
    root_fp: String,
    /// What made the root (`BUILD_ID` in os-release): the root's fingerprint, shortened.
    build_id: String,
    initrd_fp: String,
    /// The bootloaders' packages as `name sha256` lines: their folder's stamp and part of
    /// the ISO's and the disk image's fingerprints.
    boot_debs: String,
    tools: Option<corral_iso::Tools>,
}

fn missing(step: &'static str) -> BuildError {
    BuildError::StepOrder { needs: step }
}

impl<'a> Build<'a> {
    fn new(paths: &'a Paths, opts: &'a Options) -> Self {
        Build {
            paths,
            opts,
            apts: None,
            resolved: None,
            trees: Vec::new(),
            kernel: None,
            archives: Vec::new(),
            dist_images: Vec::new(),
            seed: (PathBuf::new(), String::new()),
            root_fp: String::new(),
            build_id: String::new(),
            initrd_fp: String::new(),
            boot_debs: String::new(),
            tools: None,
        }
    }

    fn apts(&self) -> Result<&Apts> {
        self.apts.as_ref().ok_or_else(|| missing("resolve"))
    }

    fn resolved(&self) -> Result<&Resolved> {
        self.resolved.as_ref().ok_or_else(|| missing("resolve"))
    }

    fn kernel(&self) -> Result<&Kernel> {
        self.kernel.as_ref().ok_or_else(|| missing("unpack"))
    }

    fn tools(&self) -> Result<&corral_iso::Tools> {
        self.tools.as_ref().ok_or_else(|| missing("boot tools"))
    }

    /// The root image (in the work folder; the ISO, the disk's slots, the update and
    /// `dist/initrd-pxe` carry it).
    fn squashfs(&self) -> PathBuf {
        self.paths.work.join("root.squashfs")
    }

    /// The initrd the ISO and the disk image boot: no root image.
    fn initrd(&self) -> PathBuf {
        self.paths.dist.join("initrd")
    }

    /// The self-contained initrd, with the root image: PXE, QEMU's `-kernel`.
    fn initrd_pxe(&self) -> PathBuf {
        self.paths.dist.join("initrd-pxe")
    }

    fn vmlinuz(&self) -> PathBuf {
        self.paths.dist.join("vmlinuz")
    }

    fn iso(&self) -> PathBuf {
        self.paths.dist.join("corral.iso")
    }

    fn disk_image(&self) -> PathBuf {
        self.paths.dist.join("corral.img")
    }

    /// The kernel command line: [`CMDLINE`] and the build's extra words.
    fn cmdline(&self) -> String {
        match &self.opts.cmdline_extra {
            Some(extra) if !extra.trim().is_empty() => format!("{CMDLINE} {}", extra.trim()),
            _ => CMDLINE.to_string(),
        }
    }
}

/// A step of the build.
type StepFn = fn(&mut Build<'_>) -> Result<()>;

/// The build, in order: (name, step). Each name is what a failure names.
pub const STEPS: &[(&str, StepFn)] = &[
    ("check the inputs", check_inputs),
    ("signing key", update::keys),
    ("resolve", resolve::step),
    ("fetch", fetch_step),
    ("unpack", root::unpack),
    ("system images", images::system_images),
    ("root image", root::root_image),
    ("initrd", initrd::initrd),
    ("kernel", initrd::kernel),
    ("boot tools", media::boot_tools),
    ("ISO", media::iso),
    ("disk image", media::disk_image),
    ("update", update::publish_step),
];

/// Builds everything into `dist/` and writes `dist/manifest.json`.
pub fn dist(paths: &Paths, opts: &Options) -> Result<Manifest> {
    let mut build = Build::new(paths, opts);
    for (name, step) in STEPS {
        step(&mut build).map_err(|e| BuildError::Step {
            step: name,
            source: Box::new(e),
        })?;
    }
    let r = build.resolved()?;
    let mut manifest = Manifest::new(
        &opts.version,
        &build.kernel()?.release,
        &build.cmdline(),
        &r.all(),
    );
    manifest.build_id = build.build_id.clone();
    manifest.update = Some(crate::manifest::UpdateArtifacts {
        file: build.update_file().display().to_string(),
        repository: build.repository().display().to_string(),
        root: build.update_root().display().to_string(),
    });
    manifest.images = build.archives.iter().map(|(_, a)| a.clone()).collect();
    for p in [
        build.iso(),
        build.disk_image(),
        build.vmlinuz(),
        build.initrd(),
        build.initrd_pxe(),
        build.squashfs(),
        build.update_file(),
    ]
    .into_iter()
    .chain(build.dist_images.iter().cloned())
    {
        manifest.artifacts.push(Artifact::of(&p)?);
    }
    manifest.write(&paths.dist.join("manifest.json"))?;
    Ok(manifest)
}

/// The host tools and Corral's own binaries are there; the output folders exist.
fn check_inputs(b: &mut Build<'_>) -> Result<()> {
    let v = &b.opts.version;
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_');
    if v.is_empty()
        || v.len() > 40
        || !v.chars().all(fine)
        || !v.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(BuildError::Spec {
            path: "VERSION".into(),
            detail: format!(
                "'{v}' is not a version: digits first, then letters, digits and . - + _ (at most 40), such as 1.2.0"
            ),
        });
    }
    for (tool, _) in host::TOOLS {
        host::require(tool)?;
    }
    for (name, _) in BINARIES {
        let bin = b.paths.binaries.join(name);
        if !bin.exists() {
            return Err(BuildError::Spec {
                path: bin,
                detail: "missing; build it with `make dist` (cargo build --profile image --target x86_64-unknown-linux-musl)".into(),
            });
        }
    }
    fs::create_dir_all(&b.paths.work).map_err(BuildError::write(&b.paths.work))?;
    fs::create_dir_all(&b.paths.dist).map_err(BuildError::write(&b.paths.dist))
}

/// Every package the build uses, into the cache.
fn fetch_step(b: &mut Build<'_>) -> Result<()> {
    let all = b.resolved()?.all();
    fetch(b.apts()?, &all, b.paths)
}

/// Corral's own binaries in the root: (built binary, path in the root).
const BINARIES: &[(&str, &str)] = &[
    ("corral-init", "usr/sbin/corral-init"),
    ("corral-manager", "usr/bin/corral-manager"),
    // The CLI on the host too (a debug or recovery shell), as in the console.
    ("corral", "usr/bin/corral"),
];

/// Busybox applets that must not be linked: PID 1's own commands stop the machine.
const NOT_APPLETS: &[&str] = &["init", "linuxrc", "poweroff", "reboot", "halt"];

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
