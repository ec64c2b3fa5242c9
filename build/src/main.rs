//! `corral-build`: `dist` builds every artifact, `lock` records package versions, `run`
//! boots them in QEMU with the console on this terminal and an ssh line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use corral_build::dist::{self, Options, Paths};
use corral_harness::{Boot, Firmware, KeyPair, Serial, Ssh, VmConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "corral-build",
    about = "Build Corral from Debian 13 packages",
    version
)]
struct Cli {
    /// Repository root (default: the current directory).
    #[arg(long, global = true, default_value = ".")]
    repo: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build dist/: corral.iso, corral.img, vmlinuz, initrd, initrd-pxe and manifest.json.
    Dist {
        /// Kernel flavour: cloud (default) or generic.
        #[arg(long)]
        kernel: Option<String>,
        /// Fail if packages differ from build/packages.lock.
        #[arg(long)]
        locked: bool,
        /// Corral's version for this build (os-release, `corral os version`, the
        /// update); the crate's version when not given.
        #[arg(long)]
        os_version: Option<String>,
        /// Where the artifacts go instead of dist/ (a second version for the upgrade
        /// tests). The signing key stays CORRAL_SIGNING_KEY or dist/'s development key.
        #[arg(long, value_name = "DIR")]
        dist_dir: Option<PathBuf>,
        /// Words added to the kernel command line of the boot menus and the update.
        #[arg(long, value_name = "WORDS")]
        cmdline_append: Option<String>,
    },
    /// Sign the next root metadata of dist/update: move the repository to NEW_KEY, or
    /// renew its root (NEW_KEY = the key it trusts). Machines built before follow the
    /// rotation the next time they read the repository; build with
    /// CORRAL_SIGNING_KEY=NEW_KEY from then on. docs/upgrades.md.
    RotateRoot {
        /// The key the repository moves to (a PKCS#8 key file; an Ed25519 one is made
        /// there if the file does not exist).
        #[arg(long, value_name = "FILE")]
        new_key: PathBuf,
        /// The key the current root trusts (default: CORRAL_SIGNING_KEY, else
        /// dist/signing-key.pk8).
        #[arg(long, value_name = "FILE")]
        old_key: Option<PathBuf>,
        /// The dist folder whose update/ repository rotates (default: dist/).
        #[arg(long, value_name = "DIR")]
        dist_dir: Option<PathBuf>,
    },
    /// Resolve packages and rewrite build/packages.lock.
    Lock {
        #[arg(long)]
        kernel: Option<String>,
    },
    /// Build the images under tests/images/ that the end-to-end tests load.
    TestImages,
    /// Upload dist/corral.img and register it as an AMI (x86_64, ENA, uefi-preferred,
    /// IMDSv2). Uses coldsnap, or with --bucket the AWS CLI's S3 import. docs/ec2.md.
    Ami {
        /// The AMI's name.
        #[arg(long)]
        name: Option<String>,
        /// AWS region (default: the AWS CLI's).
        #[arg(long)]
        region: Option<String>,
        /// Upload through this S3 bucket and `aws ec2 import-snapshot` instead of
        /// coldsnap.
        #[arg(long)]
        bucket: Option<String>,
    },
    /// Boot the floor (this kernel, an init that powers off), Corral (ISO, disk image)
    /// and Debian 13 (mmdebstrap: systemd, openssh-server, docker.io; its cloud kernel) N
    /// times each; write dist/bench.json and the table in docs/benchmarks.md.
    Bench {
        /// Boots per machine.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Machines to boot, comma-separated: floor, iso, disk (first boot), disk-again
        /// (the second boot of a disk), debian.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "floor,iso,disk,disk-again,debian"
        )]
        only: Vec<String>,
        /// Where bench.json goes (default: dist/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Leave docs/benchmarks.md alone (a smoke run).
        #[arg(long)]
        no_docs: bool,
    },
    /// Boot dist/vmlinuz + dist/initrd-pxe in QEMU with a development ssh key authorized,
    /// console here (Ctrl-A X quits).
    Run {
        /// Host port on 127.0.0.1 forwarded to the guest's ssh.
        #[arg(long, default_value_t = 2222)]
        ssh_port: u16,
        /// Boot dist/corral.iso instead (its boot menu; no key is passed).
        #[arg(long)]
        iso: bool,
        /// Boot the ISO with OVMF (UEFI) instead of SeaBIOS (implies --iso).
        #[arg(long)]
        uefi: bool,
        #[arg(long, default_value_t = 2048)]
        memory: u32,
    },
}

fn paths(repo: PathBuf) -> Paths {
    let cache = std::env::var_os("CORRAL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/corral")))
        .unwrap_or_else(|| repo.join(".cache"));
    Paths {
        binaries: repo.join("target/x86_64-unknown-linux-musl/image"),
        work: repo.join("target/corral"),
        dist: repo.join("dist"),
        cache,
        repo,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral-build: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let repo = std::fs::canonicalize(&cli.repo)
        .with_context(|| format!("opening the repository at '{}'", cli.repo.display()))?;
    let paths = paths(repo);
    match cli.command {
        Cmd::Dist {
            kernel,
            locked,
            os_version,
            dist_dir,
            cmdline_append,
        } => {
            let mut paths = paths;
            // Another folder signs with dist/'s key, which dist/'s images trust.
            let signing_key = dist_dir
                .as_ref()
                .map(|_| paths.dist.join("signing-key.pk8"));
            if let Some(dir) = dist_dir {
                paths.dist = dir;
            }
            let opts = Options {
                kernel_flavour: kernel,
                locked,
                update_lock: false,
                version: os_version.unwrap_or_else(|| dist::VERSION.to_string()),
                signing_key,
                cmdline_extra: cmdline_append,
            };
            let m = dist::dist(&paths, &opts).context("building dist/")?;
            println!("\nbuilt Corral {} (kernel {}):", m.version, m.kernel);
            for a in &m.artifacts {
                println!(
                    "  {:<16} {:>7.1} MB  sha256 {}  {}",
                    a.name,
                    a.size as f64 / 1e6,
                    &a.sha256[..16],
                    a.path
                );
            }
            if let Some(u) = &m.update {
                println!("  update file: {}", u.file);
                println!(
                    "  update repository (serve it, corral.upgrade.url): {}",
                    u.repository
                );
            }
            println!("  manifest: {}", paths.dist.join("manifest.json").display());
        }
        Cmd::RotateRoot {
            new_key,
            old_key,
            dist_dir,
        } => {
            let dist_dir = dist_dir.unwrap_or(paths.dist);
            let old_key = old_key.unwrap_or_else(|| dist::update::default_key(&dist_dir));
            let rotated =
                dist::update::rotate_root(&dist_dir, &old_key, &new_key).with_context(|| {
                    format!("rotating the root of {}", dist_dir.join("update").display())
                })?;
            println!(
                "root metadata version {} trusts {} until {}: {}",
                rotated.version,
                new_key.display(),
                rotated.expires,
                rotated.path.display()
            );
            if rotated.resigned {
                println!("the repository's releases are signed again with the new key; serve the folder as it is");
            }
            println!(
                "build from now on with CORRAL_SIGNING_KEY={} make dist; images built so far follow the rotation the next time they read the repository",
                new_key.display()
            );
        }
        Cmd::Lock { kernel } => {
            let opts = Options {
                kernel_flavour: kernel,
                locked: false,
                update_lock: true,
                version: dist::VERSION.to_string(),
                signing_key: None,
                cmdline_extra: None,
            };
            dist::resolve(&paths, &opts).context("resolving packages for the lock file")?;
        }
        Cmd::TestImages => {
            for built in dist::test_images(&paths).context("building the test images")? {
                println!("  {} ({})", built.archive.display(), built.reference);
            }
        }
        Cmd::Ami {
            name,
            region,
            bucket,
        } => {
            let version = corral_build::dist::VERSION;
            let opts = corral_build::ami::AmiOptions {
                image: paths.dist.join("corral.img"),
                name: name.unwrap_or_else(|| format!("corral-{version}")),
                description: format!("Corral {version}"),
                region,
                uploader: match bucket {
                    Some(bucket) => corral_build::ami::Uploader::S3 { bucket },
                    None => corral_build::ami::Uploader::Coldsnap,
                },
            };
            let ami = corral_build::ami::make_ami(&opts).context("registering the AMI")?;
            println!("registered {ami} ({})", opts.name);
        }
        Cmd::Bench {
            runs,
            only,
            out,
            no_docs,
        } => bench(&paths, runs, &only, out, no_docs)?,
        Cmd::Run {
            ssh_port,
            iso,
            uefi,
            memory,
        } => boot(&paths, ssh_port, iso || uefi, uefi, memory)?,
    }
    Ok(())
}

/// `corral-build bench`: the boots, then dist/bench.json and docs/benchmarks.md.
fn bench(
    paths: &Paths,
    runs: usize,
    only: &[String],
    out: Option<PathBuf>,
    no_docs: bool,
) -> anyhow::Result<()> {
    use corral_build::bench::{self, Scenario};
    let scenarios = only
        .iter()
        .map(|s| {
            Scenario::parse(s.trim()).with_context(|| {
                format!("--only {s}: the machines are floor, iso, disk, disk-again and debian")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(runs > 0, "--runs must be at least 1");
    // The image every machine preloads: tests/images/busybox, built if it is not yet.
    let preload = corral_build::dist::test_images(paths)
        .context("building the test image the machines preload")?
        .into_iter()
        .find(|b| b.archive.file_name().is_some_and(|n| n == "busybox.tar"))
        .context("tests/images/busybox is missing: the benchmark preloads it")?;
    let manifest_path = paths.dist.join("manifest.json");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&manifest_path)
            .with_context(|| format!("reading {}; run `make dist`", manifest_path.display()))?,
    )
    .with_context(|| format!("parsing {}", manifest_path.display()))?;
    let bench_paths = bench::BenchPaths {
        dist: paths.dist.clone(),
        work: paths.work.join("bench"),
        busybox: paths.work.join("rootfs/usr/bin/busybox"),
        images: paths.work.join("images"),
        preload: bench::Preload {
            archive: preload.archive,
            reference: preload.reference,
            sha256: preload.archive_sha256,
        },
        cmdline: corral_build::dist::CMDLINE.to_string(),
        kernel_release: manifest["kernel"]
            .as_str()
            .with_context(|| format!("{} has no kernel release", manifest_path.display()))?
            .to_string(),
    };
    let report = bench::bench(&bench_paths, &scenarios, runs).context("benchmarking")?;
    let out = out.unwrap_or_else(|| paths.dist.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let json_path = out.join("bench.json");
    let json = serde_json::to_string_pretty(&bench::to_json(&report))?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let when = corral_host::command::output(std::process::Command::new("date").arg("+%Y-%m-%d"))
        .map(|o| o.trim().to_string())
        .unwrap_or_default();
    let table = bench::markdown(&report, &when);
    println!("{table}");
    println!("wrote {}", json_path.display());
    if !no_docs {
        let doc = paths.repo.join("docs/benchmarks.md");
        let text =
            std::fs::read_to_string(&doc).with_context(|| format!("reading {}", doc.display()))?;
        std::fs::write(&doc, bench::splice(&text, &table))
            .with_context(|| format!("writing {}", doc.display()))?;
        println!("wrote the table into {}", doc.display());
    }
    Ok(())
}

/// `corral-build run`: boots dist/ in QEMU, the serial console on this terminal.
fn boot(paths: &Paths, ssh_port: u16, iso: bool, uefi: bool, memory: u32) -> anyhow::Result<()> {
    let artifact = |name: &str| {
        let p = paths.dist.join(name);
        anyhow::ensure!(
            p.exists(),
            "'{}' is missing; run `make dist` first",
            p.display()
        );
        Ok(p)
    };
    // The development key pair: made once, kept in dist/ (never in an image).
    let key = KeyPair::ensure(&paths.dist.join("id_ed25519"), "corral-dev")
        .context("making the development key pair in dist/")?;
    let (boot, what) = if iso {
        let iso = artifact("corral.iso")?;
        let what = iso.display().to_string();
        (Boot::Iso(iso), what)
    } else {
        let kernel = artifact("vmlinuz")?;
        let initrd = artifact("initrd-pxe")?;
        let what = format!("{} + {}", kernel.display(), initrd.display());
        let cmdline = format!("{} {}", dist::CMDLINE, key.kernel_option());
        (
            Boot::Kernel {
                kernel,
                initrd,
                cmdline,
            },
            what,
        )
    };
    let mut cfg = VmConfig::new(boot);
    cfg.ssh_port = Some(ssh_port);
    cfg.memory_mb = memory;
    cfg.no_reboot = false;
    // A machine to use: it may pull images (the tests' machines reach nothing).
    cfg.isolated = false;
    if uefi {
        cfg.firmware = Firmware::Uefi;
    }
    let ssh = Ssh {
        port: ssh_port,
        user: "corral".into(),
        key: key.private.clone(),
    };
    println!("booting {what} in QEMU (TCG, 2 cores, {memory} MB)");
    println!("  serial console below; quit QEMU with Ctrl-A then X");
    if iso {
        println!(
            "  to log in over ssh, add {} at the boot prompt (after the entry name)",
            key.kernel_option()
        );
    }
    println!("  ssh (once the console shows 'service console: running'):");
    println!("    {}\n", ssh.command_line());
    let status = std::process::Command::new("qemu-system-x86_64")
        .args(cfg.args(&Serial::Stdio))
        .status()
        .context("starting qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
    anyhow::ensure!(status.success(), "QEMU exited with {status}");
    Ok(())
}
