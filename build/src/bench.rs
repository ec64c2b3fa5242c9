//! `corral-build bench` (`make bench`): boots the floor (the same kernel with an init that
//! powers off at once), Corral (ISO and disk image) and the Debian 13 baseline
//! ([`crate::baseline`]) N times each with the same kernel, command line and QEMU flags,
//! and writes the median and range of every figure, the ratios of Corral to the floor
//! and to Debian, and sizes, to `dist/bench.json` and a table in docs/benchmarks.md.
//! docs/benchmarks.md says what each figure means; nothing here is a pass/fail check.

use crate::baseline::{self, Baseline, Recipe};
use crate::cpio::{Archive, Node};
use crate::error::{BuildError, Result};
use crate::progress::Step;
use corral_harness::bench::{self, Figures, Probe, Stat};
use corral_harness::{
    disk_from_image, free_port, nocloud_iso, preload_bootcmd, Boot, Drive, KeyPair, VmConfig,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The machines a run can boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    Floor,
    Iso,
    Disk,
    DiskAgain,
    Debian,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Floor,
        Scenario::Iso,
        Scenario::Disk,
        Scenario::DiskAgain,
        Scenario::Debian,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Floor => "floor",
            Scenario::Iso => "Corral ISO",
            Scenario::Disk => "Corral disk, 1st boot",
            Scenario::DiskAgain => "Corral disk, 2nd boot",
            Scenario::Debian => "Debian 13",
        }
    }

    /// The name `--only` takes, also the run's log folder.
    pub fn slug(self) -> &'static str {
        match self {
            Scenario::Floor => "floor",
            Scenario::Iso => "iso",
            Scenario::Disk => "disk",
            Scenario::DiskAgain => "disk-again",
            Scenario::Debian => "debian",
        }
    }

    pub fn parse(text: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.slug() == text)
    }
}

/// Where the inputs are and the results go.
pub struct BenchPaths {
    pub dist: PathBuf,
    /// Scratch: the floor initrd, disk copies, boot logs.
    pub work: PathBuf,
    /// The busybox binary the floor's init runs.
    pub busybox: PathBuf,
    /// The system image archives (`<name>.tar`).
    pub images: PathBuf,
    /// The image every machine preloads and the benchmark runs (tests/images/busybox).
    pub preload: Preload,
    /// Corral's kernel command line, which the floor and Debian boot with too.
    pub cmdline: String,
    /// Corral's kernel release, whose package the Debian baseline installs.
    pub kernel_release: String,
}

/// A `docker save` archive the machines preload, its reference and sha256.
#[derive(Debug, Clone)]
pub struct Preload {
    pub archive: PathBuf,
    pub reference: String,
    pub sha256: String,
}

/// The results of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub runs: usize,
    pub scenarios: Vec<(Scenario, BTreeMap<String, Stat>)>,
    /// (artifact, bytes).
    pub sizes: Vec<(String, u64)>,
}

const TIMEOUT: Duration = Duration::from_secs(400);

/// The floor's initrd: busybox as `/bin/busybox` and an `/init` that powers off.
pub fn floor_initrd(busybox: &Path, out: &Path) -> Result<()> {
    let mut a = Archive::default();
    a.add("bin/busybox", 0o755, Node::File(busybox.to_path_buf()));
    a.add(
        "init",
        0o755,
        Node::Data(b"#!/bin/busybox sh\n/bin/busybox poweroff -f\n".to_vec()),
    );
    a.add("dev/console", 0o600, Node::CharDev { major: 5, minor: 1 });
    a.write_to(out)
}

fn need(p: PathBuf) -> Result<PathBuf> {
    if p.exists() {
        Ok(p)
    } else {
        Err(BuildError::Command {
            command: "corral-build bench".into(),
            detail: format!("'{}' is missing; run `make dist` first", p.display()),
        })
    }
}

fn harness(what: &str) -> impl Fn(corral_harness::HarnessError) -> BuildError + '_ {
    move |e| BuildError::Command {
        command: format!("bench: {what}"),
        detail: e.to_string(),
    }
}

/// Where bench() puts the floor's initrd.
fn floor_cpio(paths: &BenchPaths) -> PathBuf {
    paths.work.join("floor.cpio")
}

/// Where bench() makes the Debian baseline.
fn debian_dir(paths: &BenchPaths) -> PathBuf {
    paths.work.join("debian")
}

/// Corral's NoCloud seed: the key, and bootcmd copying the preload archive from the seed
/// into the preload folder before the user engine starts (as a user's provisioning would).
fn corral_seed(dir: &Path, key: &KeyPair, preload: &Preload) -> Result<PathBuf> {
    let seed = dir.join("cidata");
    fs::create_dir_all(&seed).map_err(BuildError::write(&seed))?;
    fs::copy(&preload.archive, seed.join("preload.tar"))
        .map_err(BuildError::write(seed.join("preload.tar")))?;
    let user_data = format!(
        "#cloud-config\nssh_authorized_keys:\n  - {}\n{}",
        key.public.trim(),
        preload_bootcmd("preload.tar")
    );
    nocloud_iso(dir, user_data.as_bytes(), "instance-id: bench\n")
        .map_err(harness("the NoCloud seed"))
}

fn probe<'a>(scenario: Scenario, key: &'a KeyPair, preload: &'a Preload) -> Probe<'a> {
    // Debian's docker.io runs runc only; Corral's engines have crun too.
    let (user, as_root, runtimes): (_, _, &[&str]) = match scenario {
        Scenario::Debian => ("root", "", &["runc"]),
        _ => ("corral", "sudo ", &["runc", "crun"]),
    };
    Probe {
        key,
        user,
        as_root,
        image: Some(&preload.reference),
        runtimes,
    }
}

/// One boot of `scenario`.
fn run_once(scenario: Scenario, paths: &BenchPaths, key: &KeyPair, n: usize) -> Result<Figures> {
    let dir = paths.work.join(format!("{}-{n}", scenario.slug()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(BuildError::write(&dir))?;
    let kernel = need(paths.dist.join("vmlinuz"))?;
    match scenario {
        Scenario::Floor => {
            // Made once by bench().
            let cfg = bench::floor_config(&kernel, &floor_cpio(paths), &paths.cmdline);
            bench::floor_run(&cfg, &dir, TIMEOUT).map_err(harness("the floor"))
        }
        Scenario::Iso => {
            let mut cfg = VmConfig::new(Boot::Iso(need(paths.dist.join("corral.iso"))?));
            cfg.drives.push(Drive {
                file: corral_seed(&dir, key, &paths.preload)?,
                kind: "cdrom",
            });
            cfg.ssh_port = Some(free_port().map_err(harness("a port"))?);
            let answers = vec![("boot:".into(), format!("corral {}\n", key.kernel_option()))];
            let probe = probe(scenario, key, &paths.preload);
            bench::machine_run("bench-iso", &cfg, &dir, answers, &probe, TIMEOUT)
                .map_err(harness("the ISO"))
        }
        Scenario::Disk | Scenario::DiskAgain => {
            // A fresh copy each time. The first boot grows the state partition, copies
            // the system images onto it and takes its cloud-config from the seed.
            let disk = dir.join("disk.img");
            disk_from_image(&need(paths.dist.join("corral.img"))?, &disk, 3 << 30)
                .map_err(harness("copying the disk image"))?;
            let mut cfg = VmConfig::new(Boot::Disk(disk));
            cfg.drives.push(Drive {
                file: corral_seed(&dir, key, &paths.preload)?,
                kind: "cdrom",
            });
            cfg.ssh_port = Some(free_port().map_err(harness("a port"))?);
            let probe = probe(scenario, key, &paths.preload);
            if scenario == Scenario::DiskAgain {
                // The first boot, unmeasured (its figures are the Disk scenario's);
                // the second boots without the seed, from what the first one kept.
                let first = dir.join("first-boot");
                fs::create_dir_all(&first).map_err(BuildError::write(&first))?;
                bench::machine_run("bench-disk-1st", &cfg, &first, Vec::new(), &probe, TIMEOUT)
                    .map_err(harness("the disk image's first boot"))?;
                cfg.drives.clear();
            }
            bench::machine_run("bench-disk", &cfg, &dir, Vec::new(), &probe, TIMEOUT)
                .map_err(harness("the disk image"))
        }
        Scenario::Debian => {
            // Made once by bench(); a fresh copy each time, as for Corral's disk.
            let made = Baseline::in_dir(&debian_dir(paths));
            let disk = dir.join("debian.img");
            disk_from_image(&made.image, &disk, baseline::IMAGE_BYTES)
                .map_err(harness("copying the Debian image"))?;
            let mut cfg = VmConfig::new(Boot::Kernel {
                kernel,
                initrd: made.initrd,
                cmdline: Baseline::cmdline(&paths.cmdline),
            });
            cfg.drives.push(Drive {
                file: disk,
                kind: "virtio",
            });
            cfg.ssh_port = Some(free_port().map_err(harness("a port"))?);
            let probe = probe(scenario, key, &paths.preload);
            bench::machine_run("bench-debian", &cfg, &dir, Vec::new(), &probe, TIMEOUT)
                .map_err(harness("the Debian baseline"))
        }
    }
}

/// Boots each scenario `runs` times, in turn (floor, ISO, disk, floor, ...), so that a
/// machine's slow spell spreads over all of them.
pub fn bench(paths: &BenchPaths, scenarios: &[Scenario], runs: usize) -> Result<Report> {
    fs::create_dir_all(&paths.work).map_err(BuildError::write(&paths.work))?;
    let key = KeyPair::ensure(&paths.work.join("id_ed25519"), "corral-bench")
        .map_err(harness("the key pair"))?;
    if scenarios.contains(&Scenario::Floor) {
        floor_initrd(&need(paths.busybox.clone())?, &floor_cpio(paths))?;
    }
    if scenarios.contains(&Scenario::Debian) {
        let step = Step::start("the Debian 13 baseline image (mmdebstrap)", 0);
        let recipe = Recipe {
            kernel: paths.kernel_release.clone(),
            public_key: key.public.clone(),
            archive: paths.preload.archive.clone(),
            archive_sha256: paths.preload.sha256.clone(),
        };
        let made = baseline::ensure(&recipe, &debian_dir(paths))?;
        step.done(&made.image.display().to_string());
    }
    let mut figures: BTreeMap<Scenario, Vec<Figures>> = BTreeMap::new();
    for n in 1..=runs {
        for &s in scenarios {
            let step = Step::start(&format!("{} run {n}/{runs}", s.name()), 0);
            let f = run_once(s, paths, &key, n)?;
            let headline = f
                .get("sshd accepts the key")
                .or_else(|| f.get("QEMU exit (powered off)"))
                .copied()
                .unwrap_or_default();
            step.done(&format!("{headline:.1}s"));
            figures.entry(s).or_default().push(f);
        }
    }
    let mut sizes = Vec::new();
    for name in [
        "corral.iso",
        "corral.img",
        "vmlinuz",
        "initrd",
        "initrd-pxe",
    ] {
        if let Ok(m) = fs::metadata(paths.dist.join(name)) {
            sizes.push((name.to_string(), m.len()));
        }
    }
    if let Ok(m) = fs::metadata(paths.dist.join("corral.img")) {
        use std::os::unix::fs::MetadataExt;
        sizes.push(("corral.img (allocated)".into(), m.blocks() * 512));
    }
    let mut images: Vec<(String, u64)> = fs::read_dir(&paths.images)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let image = name.strip_suffix(".tar")?.to_string();
                    Some((format!("system image {image}"), e.metadata().ok()?.len()))
                })
                .collect()
        })
        .unwrap_or_default();
    images.sort();
    sizes.extend(images);
    Ok(Report {
        runs,
        scenarios: figures
            .into_iter()
            .map(|(s, runs)| (s, bench::summarize(&runs)))
            .collect(),
        sizes,
    })
}

/// The order figures appear in: boot order, then the rest by name.
fn figure_order(report: &Report) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |n: &str| {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    };
    for (name, _) in bench::MARKERS.iter().take(4) {
        push(name);
    }
    let mut services: Vec<&String> = report
        .scenarios
        .iter()
        .flat_map(|(_, m)| m.keys())
        .filter(|k| k.starts_with("service "))
        .collect();
    services.sort();
    for s in services {
        push(s);
    }
    for n in [
        "sshd accepts the key",
        "user engine ready",
        "docker info answers",
        "first docker run answers",
        "QEMU exit (powered off)",
        "poweroff (s)",
        "memory in use (MiB)",
    ] {
        push(n);
    }
    let mut rest: Vec<&String> = report
        .scenarios
        .iter()
        .flat_map(|(_, m)| m.keys())
        .collect();
    rest.sort();
    for r in rest {
        push(r);
    }
    names.retain(|n| report.scenarios.iter().any(|(_, m)| m.contains_key(n)));
    names
}

fn cell(stat: Option<&Stat>) -> String {
    match stat {
        None => String::new(),
        Some(s) if s.runs > 1 => format!("{:.1} ({:.1}-{:.1})", s.median, s.min, s.max),
        Some(s) => format!("{:.1}", s.median),
    }
}

/// The figures compared with Debian, each against the same figure there.
pub const DEBIAN_RATIOS: &[&str] = &[
    "sshd accepts the key",
    "docker info answers",
    "first docker run answers",
    "memory in use (MiB)",
    "poweroff (s)",
];

/// The ratio columns: (Corral machine, reference) for each pair present.
fn ratio_columns(report: &Report) -> Vec<(Scenario, Scenario)> {
    let has = |s: Scenario| report.scenarios.iter().any(|(x, _)| *x == s);
    let mut out = Vec::new();
    for reference in [Scenario::Floor, Scenario::Debian] {
        for corral in [Scenario::Iso, Scenario::Disk, Scenario::DiskAgain] {
            if has(reference) && has(corral) {
                out.push((corral, reference));
            }
        }
    }
    out
}

/// `corral`'s figure `name` over what it is compared with in `reference`: the floor's
/// QEMU exit for sshd (the "ssh ready <= 3x floor"), Debian's same figure for
/// [`DEBIAN_RATIOS`]; `None` elsewhere.
pub fn ratio(report: &Report, corral: Scenario, reference: Scenario, name: &str) -> Option<f64> {
    let figures = |s: Scenario| {
        report
            .scenarios
            .iter()
            .find(|(x, _)| *x == s)
            .map(|(_, m)| m)
    };
    let against = match reference {
        Scenario::Floor if name == "sshd accepts the key" => "QEMU exit (powered off)",
        Scenario::Debian if DEBIAN_RATIOS.contains(&name) => name,
        _ => return None,
    };
    let top = figures(corral)?.get(name)?.median;
    let bottom = figures(reference)?.get(against)?.median;
    (bottom > 0.0).then(|| top / bottom)
}

/// The tables for docs/benchmarks.md.
pub fn markdown(report: &Report, when: &str) -> String {
    let mut out = format!(
        "{} run(s) per machine, {when}; median (min-max). Seconds from QEMU's start unless \
         the figure says otherwise.\n\n",
        report.runs
    );
    let ratios = ratio_columns(report);
    out.push_str("| figure |");
    for (s, _) in &report.scenarios {
        out.push_str(&format!(" {} |", s.name()));
    }
    for (c, r) in &ratios {
        out.push_str(&format!(" {} / {} |", c.name(), r.name()));
    }
    out.push_str("\n|---|");
    for _ in 0..report.scenarios.len() + ratios.len() {
        out.push_str("---|");
    }
    out.push('\n');
    for name in figure_order(report) {
        out.push_str(&format!("| {name} |"));
        for (_, m) in &report.scenarios {
            out.push_str(&format!(" {} |", cell(m.get(&name))));
        }
        for (c, r) in &ratios {
            match ratio(report, *c, *r, &name) {
                Some(x) => out.push_str(&format!(" {x:.2}x |")),
                None => out.push_str("  |"),
            }
        }
        out.push('\n');
    }
    out.push_str("\n| artifact | size (MB) |\n|---|---|\n");
    for (name, bytes) in &report.sizes {
        out.push_str(&format!("| {name} | {:.1} |\n", *bytes as f64 / 1e6));
    }
    out
}

/// `dist/bench.json`.
pub fn to_json(report: &Report) -> Value {
    let scenarios: serde_json::Map<String, Value> = report
        .scenarios
        .iter()
        .map(|(s, m)| {
            let figures: serde_json::Map<String, Value> = m
                .iter()
                .map(|(k, st)| {
                    (
                        k.clone(),
                        json!({"median": st.median, "min": st.min, "max": st.max, "runs": st.runs}),
                    )
                })
                .collect();
            (s.name().to_string(), Value::Object(figures))
        })
        .collect();
    let sizes: serde_json::Map<String, Value> = report
        .sizes
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut ratios = serde_json::Map::new();
    for (c, r) in ratio_columns(report) {
        let column: serde_json::Map<String, Value> = figure_order(report)
            .into_iter()
            .filter_map(|name| Some((name.clone(), json!(ratio(report, c, r, &name)?))))
            .collect();
        ratios.insert(
            format!("{} / {}", c.name(), r.name()),
            Value::Object(column),
        );
    }
    json!({"runs": report.runs, "scenarios": scenarios, "ratios": ratios, "sizes_bytes": sizes})
}

pub const BEGIN: &str = "<!-- bench:begin (written by make bench) -->";
pub const END: &str = "<!-- bench:end -->";

/// `doc` with the text between [`BEGIN`] and [`END`] replaced by `table` (both markers
/// appended at the end when absent).
pub fn splice(doc: &str, table: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => format!(
            "{}{BEGIN}\n{table}{END}{}",
            &doc[..b],
            &doc[e + END.len()..]
        ),
        _ => format!("{}\n{BEGIN}\n{table}{END}\n", doc.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let st = |m: f64, a: f64, b: f64| Stat {
            median: m,
            min: a,
            max: b,
            runs: 3,
        };
        Report {
            runs: 3,
            scenarios: vec![
                (
                    Scenario::Floor,
                    BTreeMap::from([
                        ("kernel start".to_string(), st(0.5, 0.4, 0.6)),
                        ("QEMU exit (powered off)".to_string(), st(3.0, 2.9, 3.2)),
                    ]),
                ),
                (
                    Scenario::Iso,
                    BTreeMap::from([
                        ("kernel start".to_string(), st(1.5, 1.4, 1.6)),
                        ("sshd accepts the key".to_string(), st(24.0, 23.0, 26.0)),
                        ("service ntp up".to_string(), st(18.0, 17.0, 19.0)),
                        ("docker info answers".to_string(), st(20.0, 19.0, 21.0)),
                        ("RSS PID 1 (MiB)".to_string(), st(0.6, 0.6, 0.6)),
                    ]),
                ),
                (
                    Scenario::Debian,
                    BTreeMap::from([
                        ("sshd accepts the key".to_string(), st(26.0, 25.0, 27.0)),
                        ("docker info answers".to_string(), st(40.0, 39.0, 41.0)),
                        ("RSS PID 1 (MiB)".to_string(), st(9.0, 9.0, 9.0)),
                    ]),
                ),
            ],
            sizes: vec![("corral.iso".into(), 109_100_000)],
        }
    }

    #[test]
    fn the_table_has_a_column_per_machine_in_boot_order() {
        let md = markdown(&report(), "2026-11-21");
        assert!(
            md.contains(
                "| figure | floor | Corral ISO | Debian 13 | Corral ISO / floor | Corral ISO / Debian 13 |"
            ),
            "{md}"
        );
        let kernel = md
            .find("| kernel start | 0.5 (0.4-0.6) | 1.5 (1.4-1.6) |  |  |  |")
            .unwrap();
        let ntp = md.find("| service ntp up |  | 18.0 (17.0-19.0) |").unwrap();
        // sshd against the floor's exit and against Debian's sshd.
        let ssh = md
            .find(
                "| sshd accepts the key |  | 24.0 (23.0-26.0) | 26.0 (25.0-27.0) | 8.00x | 0.92x |",
            )
            .unwrap();
        let info = md
            .find("| docker info answers |  | 20.0 (19.0-21.0) | 40.0 (39.0-41.0) |  | 0.50x |")
            .unwrap();
        assert!(kernel < ntp && ntp < ssh && ssh < info, "{md}");
        // Figures outside the comparison get no ratio.
        assert!(
            md.contains("| RSS PID 1 (MiB) |  | 0.6 (0.6-0.6) | 9.0 (9.0-9.0) |  |  |"),
            "{md}"
        );
        assert!(md.contains("| corral.iso | 109.1 |"));
    }

    #[test]
    fn json_has_every_figure_with_its_range() {
        let j = to_json(&report());
        assert_eq!(j["runs"], 3);
        assert_eq!(
            j["scenarios"]["Corral ISO"]["sshd accepts the key"]["median"],
            24.0
        );
        assert_eq!(
            j["scenarios"]["floor"]["QEMU exit (powered off)"]["max"],
            3.2
        );
        assert_eq!(j["sizes_bytes"]["corral.iso"], 109_100_000);
        assert_eq!(
            j["ratios"]["Corral ISO / Debian 13"]["docker info answers"],
            0.5
        );
        assert_eq!(
            j["ratios"]["Corral ISO / floor"]["sshd accepts the key"],
            8.0
        );
        assert!(j["ratios"]["Corral ISO / floor"]
            .get("kernel start")
            .is_none());
    }

    #[test]
    fn the_docs_table_is_replaced_between_its_markers() {
        let doc = format!("# B\n\nintro\n{BEGIN}\nold\n{END}\n\nafter\n");
        let new = splice(&doc, "new\n");
        assert_eq!(new, format!("# B\n\nintro\n{BEGIN}\nnew\n{END}\n\nafter\n"));
        let added = splice("# B\n", "t\n");
        assert_eq!(added, format!("# B\n{BEGIN}\nt\n{END}\n"));
    }

    #[test]
    fn the_floor_init_powers_off() {
        let dir = tempfile::tempdir().unwrap();
        let bb = dir.path().join("busybox");
        fs::write(&bb, b"\x7fELF").unwrap();
        let out = dir.path().join("floor.cpio");
        floor_initrd(&bb, &out).unwrap();
        let bytes = fs::read(&out).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("/bin/busybox poweroff -f"));
        assert!(text.contains("bin/busybox") && text.contains("dev/console"));
    }

    #[test]
    fn scenario_names_parse() {
        assert_eq!(Scenario::parse("iso"), Some(Scenario::Iso));
        assert_eq!(Scenario::parse("debian"), Some(Scenario::Debian));
        assert_eq!(Scenario::parse("ubuntu"), None);
    }
}
