//! Benchmark runs: one boot of a machine, its figures read off the console (each line
//! timestamped from QEMU's start by the harness), the ssh session and QEMU's exit; and
//! the statistics over repeated runs. `corral-build bench` drives it and writes the
//! tables (docs/benchmarks.md). Figures only: nothing here asserts a time.

use crate::{Boot, HarnessError, KeyPair, Result, Ssh, Vm, VmConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Figures of one run: seconds from QEMU's start, MiB, or seconds of a latency.
pub type Figures = BTreeMap<String, f64>;

/// Console markers, in boot order: (figure, text of the first line that marks it).
pub const MARKERS: &[(&str, &str)] = &[
    ("kernel start", "Linux version"),
    ("/init", "Corral init"),
    ("root switched", "root switched at"),
    ("system engine ready", "system engine ready"),
    ("user engine ready", "user engine: ready"),
];

/// The kernel-clock time a Corral line carries (`... at 13.10s ...`), if any.
fn kernel_time(line: &str) -> Option<f64> {
    line.split(" at ")
        .skip(1)
        .find_map(|rest| rest.split('s').next()?.trim().parse::<f64>().ok())
}

/// The console's figures: the first line holding each marker, and each service's first
/// `service NAME: running` (figure `service NAME up`). A line that says when it happened
/// on the kernel's clock (`at 13.10s`) counts from the kernel's start as the harness saw
/// it, since the serial console may print it later than it happened.
pub fn console_figures(lines: &[(f64, String)]) -> Figures {
    let mut out = Figures::new();
    let kernel = lines
        .iter()
        .find(|(_, l)| l.contains(MARKERS[0].1))
        .map(|(t, _)| *t);
    for (seen, line) in lines {
        let at = &match (kernel, kernel_time(line)) {
            (Some(k), Some(t)) => (k + t).min(*seen),
            _ => *seen,
        };
        for (name, needle) in MARKERS {
            if line.contains(needle) {
                out.entry(name.to_string()).or_insert(*at);
            }
        }
        if let Some(rest) = line.split("service ").nth(1) {
            if let Some((name, tail)) = rest.split_once(": ") {
                if tail.starts_with("running") && !name.contains(' ') {
                    out.entry(format!("service {name} up")).or_insert(*at);
                }
            }
        }
    }
    out
}

/// Median, minimum and maximum of a figure over runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

/// The statistics of `samples`; `None` when there are none.
pub fn stat(samples: &[f64]) -> Option<Stat> {
    let mut s: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: s[0],
        max: s[n - 1],
        runs: n,
    })
}

/// Every figure's statistics over `runs` (a figure missing from a run counts only where
/// it was measured).
pub fn summarize(runs: &[Figures]) -> BTreeMap<String, Stat> {
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for run in runs {
        for (k, v) in run {
            samples.entry(k.clone()).or_default().push(*v);
        }
    }
    samples
        .into_iter()
        .filter_map(|(k, v)| Some((k, stat(&v)?)))
        .collect()
}

/// Resident memory in MiB of Corral's processes, from lines `PID|CMDLINE|VmRSS: N kB`
/// (what [`RSS_SCRIPT`] prints): PID 1, the manager, and each engine's dockerd.
pub fn rss_figures(text: &str) -> Figures {
    let mut out = Figures::new();
    for line in text.lines() {
        let mut f = line.splitn(3, '|');
        let (Some(pid), Some(cmd), Some(rss)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Some(kb) = rss
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<f64>().ok())
        else {
            continue;
        };
        let name = if pid.trim() == "1" {
            "RSS PID 1"
        } else if cmd.contains("corral-manager") {
            "RSS manager"
        } else if cmd.contains("dockerd") && cmd.contains("system-docker") {
            "RSS system dockerd"
        } else if cmd.contains("dockerd") {
            "RSS user dockerd"
        } else {
            continue;
        };
        out.insert(name.into(), kb / 1024.0);
    }
    out
}

/// Prints `PID|CMDLINE|VmRSS: N kB` for PID 1, the manager and the dockerds (as root).
pub const RSS_SCRIPT: &str = "for p in 1 $(pgrep -x corral-manager) $(pgrep -x dockerd); do \
    printf '%s|%s|%s\\n' $p \"$(tr '\\0' ' ' < /proc/$p/cmdline)\" \"$(grep VmRSS /proc/$p/status)\"; done";

/// `text` as one single-quoted shell word.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Memory in use in MiB (MemTotal - MemAvailable) from /proc/meminfo's text.
pub fn used_mib(meminfo: &str) -> Option<f64> {
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<f64>().ok())
    };
    Some((field("MemTotal:")? - field("MemAvailable:")?) / 1024.0)
}

/// The floor: a kernel whose init powers off at once. Figures: the kernel's start and
/// QEMU's exit, from QEMU's start.
pub fn floor_run(cfg: &VmConfig, dir: &Path, timeout: Duration) -> Result<Figures> {
    let mut vm = Vm::start("floor", cfg, dir, Vec::new())?;
    vm.wait_exit(timeout)?;
    let exited = vm.started.elapsed().as_secs_f64();
    let mut out = console_figures(&vm.console_lines());
    out.insert("QEMU exit (powered off)".into(), exited);
    Ok(out)
}

/// How long to let a booted machine settle before reading its memory.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Who a benchmark logs in as, and what it asks of the machine.
pub struct Probe<'a> {
    pub key: &'a KeyPair,
    pub user: &'a str,
    /// What runs a command as root: `"sudo "` for Corral's `corral` user, `""` for root.
    pub as_root: &'a str,
    /// An image the machine preloads at boot: the figure `first docker run answers` is
    /// when `docker run --pull never IMAGE true` first succeeds.
    pub image: Option<&'a str>,
    /// The OCI runtimes to compare with that image ([`runtime_figures`]).
    pub runtimes: &'a [&'a str],
}

/// How many containers each runtime figure takes.
const RUNTIME_RUNS: usize = 5;

/// For each runtime: the mean time of a `docker run --rm IMAGE true` (five each, the
/// runtimes in turns, after one each not counted, timed inside the guest by
/// /proc/uptime; the docker CLI's own start is in it, the same for every runtime), and
/// the memory five idle containers add, per container.
pub fn runtime_figures(
    ssh: &Ssh,
    image: &str,
    runtimes: &[&str],
    per_try: Duration,
) -> Result<Figures> {
    let mut out = Figures::new();
    let run =
        |rt: &str| format!("docker run --rm --pull never --runtime {rt} {image} true >/dev/null");
    for rt in runtimes {
        ssh.check(&run(rt), per_try)?;
    }
    // Taken in turns (runc, crun, runc, ...), so that a machine still settling does not
    // favour the runtime measured last.
    let mut spent = vec![0.0; runtimes.len()];
    for _ in 0..RUNTIME_RUNS {
        for (rt, total) in runtimes.iter().zip(spent.iter_mut()) {
            let timed = ssh.check(
                &format!(
                    "a=$(cut -d' ' -f1 /proc/uptime); {} || exit 1; echo $a $(cut -d' ' -f1 /proc/uptime)",
                    run(rt)
                ),
                per_try,
            )?;
            let mut t = timed
                .split_whitespace()
                .filter_map(|v| v.parse::<f64>().ok());
            if let (Some(a), Some(b)) = (t.next(), t.next()) {
                *total += b - a;
            }
        }
    }
    for (rt, total) in runtimes.iter().zip(spent) {
        out.insert(
            format!("docker run --rm, {rt} (s)"),
            total / RUNTIME_RUNS as f64,
        );
    }
    for rt in runtimes {
        let before = used_mib(&ssh.check("cat /proc/meminfo", per_try)?);
        let names: Vec<String> = (1..=RUNTIME_RUNS)
            .map(|i| format!("bench-{rt}-{i}"))
            .collect();
        for n in &names {
            ssh.check(
                &format!("docker run -d --pull never --runtime {rt} --name {n} {image} sleep 600 >/dev/null"),
                per_try,
            )?;
        }
        std::thread::sleep(Duration::from_secs(5));
        let after = used_mib(&ssh.check("cat /proc/meminfo", per_try)?);
        ssh.check(
            &format!("docker rm -f {} >/dev/null", names.join(" ")),
            per_try,
        )?;
        if let (Some(b), Some(a)) = (before, after) {
            out.insert(
                format!("idle container, {rt} (MiB)"),
                (a - b) / RUNTIME_RUNS as f64,
            );
        }
    }
    Ok(out)
}

/// One boot of a machine with sshd and Docker (Corral, or the Debian baseline): the
/// console's markers, sshd accepting the key, `docker info` answering, a first `docker
/// run` of the preloaded image, memory once settled, and the poweroff latency.
pub fn machine_run(
    name: &str,
    cfg: &VmConfig,
    dir: &Path,
    answers: Vec<(String, String)>,
    probe: &Probe,
    timeout: Duration,
) -> Result<Figures> {
    let port = cfg
        .ssh_port
        .ok_or_else(|| HarnessError::Timeout("a benchmark machine needs an ssh port".into()))?;
    let mut vm = Vm::start(name, cfg, dir, answers)?;
    let ssh = Ssh {
        port,
        user: probe.user.into(),
        key: probe.key.private.clone(),
    };
    let since = |t: Instant| t.duration_since(vm.started).as_secs_f64();
    let mut out = Figures::new();
    let ready = ssh.wait_ready(timeout)?;
    out.insert("sshd accepts the key".into(), since(ready));
    let per_try = Duration::from_secs(60);
    ssh.eventually(
        "docker info --format '{{.ServerVersion}}'",
        timeout,
        per_try,
    )?;
    out.insert("docker info answers".into(), since(Instant::now()));
    if let Some(image) = probe.image {
        ssh.eventually(
            &format!("docker run --rm --pull never {image} true"),
            timeout,
            per_try,
        )?;
        out.insert("first docker run answers".into(), since(Instant::now()));
    }
    // Before the settled memory, which the runtime figures' containers do not stay for.
    if let Some(image) = probe.image {
        out.extend(runtime_figures(&ssh, image, probe.runtimes, per_try)?);
    }
    std::thread::sleep(SETTLE);
    if let Some(used) = used_mib(&ssh.check("cat /proc/meminfo", per_try)?) {
        out.insert("memory in use (MiB)".into(), used);
    }
    let rss = ssh.check(
        &format!("{}sh -c {}", probe.as_root, sh_quote(RSS_SCRIPT)),
        per_try,
    )?;
    out.extend(
        rss_figures(&rss)
            .into_iter()
            .map(|(k, v)| (format!("{k} (MiB)"), v)),
    );
    out.extend(console_figures(&vm.console_lines()));
    let asked = Instant::now();
    let _ = ssh.run(&format!("{}poweroff", probe.as_root), per_try);
    vm.wait_exit(timeout)?;
    out.insert("poweroff (s)".into(), asked.elapsed().as_secs_f64());
    Ok(out)
}

/// The kernel + initrd machine of a floor run.
/// `cmdline` is Corral's own, so the kernel does the same work (consoles included).
pub fn floor_config(kernel: &Path, initrd: &Path, cmdline: &str) -> VmConfig {
    VmConfig::new(Boot::Kernel {
        kernel: kernel.to_path_buf(),
        initrd: initrd.to_path_buf(),
        cmdline: cmdline.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_take_the_first_line_and_each_service() {
        let lines = vec![
            (
                0.9,
                "[    0.000000] Linux version 6.1.0-56-cloud-amd64".to_string(),
            ),
            (
                2.1,
                "corral-init: Corral init 0.1.0 starting at 1.20s".to_string(),
            ),
            (2.4, "corral-init: root switched at 1.50s".to_string()),
            (
                12.0,
                "corral-manager: system engine ready at 10.20s since boot".into(),
            ),
            (
                13.0,
                "corral-manager: system engine ready at 11.00s since boot".into(),
            ),
            (
                15.5,
                "corral-manager: service network: running (Created) at 13.10s".into(),
            ),
            (
                16.0,
                "corral-manager: service ntp: created (Created) at 13.90s".into(),
            ),
            (
                17.0,
                "corral-manager: service ntp: running (Started) at 14.20s".into(),
            ),
            (
                18.0,
                "corral-manager: service network: running (Started) at 15.00s".into(),
            ),
            (30.0, "corral-manager: user engine: ready at 27.00s".into()),
        ];
        let f = console_figures(&lines);
        let near = |name: &str, want: f64| {
            assert!(
                (f[name] - want).abs() < 1e-9,
                "{name}: {} != {want}",
                f[name]
            );
        };
        near("kernel start", 0.9);
        // Kernel clock + the kernel's start, when that is earlier than the line showed.
        near("/init", 2.1);
        near("root switched", 2.4);
        near("system engine ready", 11.1);
        near("service network up", 14.0);
        near("service ntp up", 15.1);
        near("user engine ready", 27.9);
        assert_eq!(f.len(), 7);
        assert_eq!(
            kernel_time("service x: running (Created) at 13.10s"),
            Some(13.1)
        );
        assert_eq!(kernel_time("no time here"), None);
    }

    #[test]
    fn a_script_is_quoted_as_one_word() {
        assert_eq!(sh_quote("a 'b' $c"), "'a '\\''b'\\'' $c'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sh -c {}",
                sh_quote("printf '%s|' \"$(echo x y)\"")
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "x y|");
    }

    #[test]
    fn median_and_range() {
        assert_eq!(stat(&[]), None);
        let s = stat(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        assert_eq!(stat(&[4.0, 1.0, 2.0, 10.0]).unwrap().median, 3.0);
        assert_eq!(stat(&[f64::NAN, 5.0]).unwrap().runs, 1);
        let runs = vec![
            Figures::from([("a".to_string(), 1.0), ("b".to_string(), 5.0)]),
            Figures::from([("a".to_string(), 3.0)]),
        ];
        let sum = summarize(&runs);
        assert_eq!(sum["a"].median, 2.0);
        assert_eq!(sum["b"].runs, 1);
    }

    #[test]
    fn memory_and_rss_are_read_in_mib() {
        let meminfo = "MemTotal:        2030000 kB\nMemFree:  1 kB\nMemAvailable:    1868160 kB\n";
        assert_eq!(used_mib(meminfo), Some((2030000.0 - 1868160.0) / 1024.0));
        assert_eq!(used_mib("MemTotal: 1 kB\n"), None);
        let text = "1|/init |VmRSS:\t    1536 kB\n\
                    90|/usr/bin/corral-manager |VmRSS:\t   10240 kB\n\
                    120|/usr/bin/dockerd -H unix:///run/system-docker.sock --bridge=none |VmRSS:\t   51200 kB\n\
                    400|dockerd --host=unix:///var/run/docker.sock |VmRSS:\t   40960 kB\n\
                    77|gone||\n";
        let f = rss_figures(text);
        assert_eq!(f["RSS PID 1"], 1.5);
        assert_eq!(f["RSS manager"], 10.0);
        assert_eq!(f["RSS system dockerd"], 50.0);
        assert_eq!(f["RSS user dockerd"], 40.0);
        assert_eq!(f.len(), 4);
    }
}
