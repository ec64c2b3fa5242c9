//! `corral.docker` -> the user engine's dockerd: its flags and its `daemon.json`.
//!
//! Sockets, data root, exec root, pid file and config file are Corral's and fixed
//! ([`Paths`]); every setting a user can change goes into `daemon.json`; `extra_args`
//! are flags after Corral's. A flag in `extra_args` that dockerd would also find in
//! `daemon.json` wins, and the file loses that key (dockerd refuses to start when both
//! name it). Values the engine cannot take are errors that name the key and the fix;
//! what RancherOS's files set that Corral fixes is a warning, and the rest applies.

use corral_config::schema::Engine;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// What the user engine cannot be told to do, with the key named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corral.docker.{key}: {problem}")]
pub struct EngineError {
    pub key: String,
    pub problem: String,
}

fn err(key: &str, problem: impl Into<String>) -> EngineError {
    EngineError {
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// Where the engine's files are, as dockerd sees them (inside the engine's container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub config_file: PathBuf,
    /// The TLS files (`ca.pem`, `server-cert.pem`, `server-key.pem`).
    pub tls_dir: PathBuf,
}

impl Paths {
    /// The user engine in its service (DESIGN.md).
    pub fn engine() -> Paths {
        Paths {
            socket: crate::SOCKET.into(),
            data_root: crate::DATA_ROOT.into(),
            exec_root: crate::EXEC_ROOT.into(),
            pidfile: "/var/run/docker.pid".into(),
            config_file: Path::new(crate::CONFIG_IN_ENGINE).join("daemon.json"),
            tls_dir: crate::TLS_IN_ENGINE.into(),
        }
    }
}

/// The storage drivers the engine's kernel and image support.
pub const STORAGE_DRIVERS: &[&str] = &["overlay2", "vfs"];

/// dockerd's built-in log drivers that work on Corral (no journald, no Windows ETW).
pub const LOG_DRIVERS: &[&str] = &[
    "json-file",
    "local",
    "syslog",
    "none",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "gcplogs",
    "logentries",
];

/// Flags Corral sets itself; an `extra_args` entry with one of them is a warning and is
/// left out.
const FIXED_FLAGS: &[&str] = &[
    "--data-root",
    "-g",
    "--graph",
    "--exec-root",
    "--pidfile",
    "-p",
    "--config-file",
];

/// dockerd's flags that take a value, as RancherOS's `args` wrote them (`-s overlay`),
/// besides [`FIXED_FLAGS`], which all do.
const VALUE_FLAGS: &[&str] = &[
    "-G",
    "--group",
    "-H",
    "--host",
    "-s",
    "--storage-driver",
    "--storage-opt",
    "--log-driver",
    "--log-opt",
    "--log-level",
    "-l",
    "--bip",
    "-b",
    "--bridge",
    "--insecure-registry",
    "--registry-mirror",
    "--add-runtime",
    "--default-runtime",
    "--mtu",
    "--dns",
    "--dns-search",
    "--dns-opt",
    "--label",
    "--exec-opt",
    "--default-ulimit",
    "--cgroup-parent",
    "--fixed-cidr",
    "--default-gateway",
    "--ip",
    "--max-concurrent-downloads",
    "--max-concurrent-uploads",
    "--shutdown-timeout",
];

/// The warning for a storage driver Corral's engine does not have (RancherOS's
/// `overlay`, `aufs`, `devicemapper`, ...).
fn unavailable_driver(at: &str, d: &str) -> String {
    format!(
        "{at}: {d:?} is not in Corral's engine; it uses overlay2 (the drivers there: {})",
        STORAGE_DRIVERS.join(", ")
    )
}

/// Flags that dockerd also reads from `daemon.json`, and that key.
const FLAG_KEYS: &[(&str, &str)] = &[
    ("--storage-driver", "storage-driver"),
    ("-s", "storage-driver"),
    ("--log-driver", "log-driver"),
    ("--log-opt", "log-opts"),
    ("--bip", "bip"),
    ("--bridge", "bridge"),
    ("-b", "bridge"),
    ("--debug", "debug"),
    ("--log-level", "log-level"),
    ("-l", "log-level"),
    ("-D", "debug"),
    ("--insecure-registry", "insecure-registries"),
    ("--registry-mirror", "registry-mirrors"),
    ("--live-restore", "live-restore"),
    ("--userland-proxy", "userland-proxy"),
    ("--shutdown-timeout", "shutdown-timeout"),
    ("--add-runtime", "runtimes"),
    ("--default-runtime", "default-runtime"),
];

pub use corral_dockerd::engine::RUNTIMES;

/// The runtime containers run with unless they ask for another: crun, a C program
/// where runc is Go; docs/benchmarks.md ("OCI runtime") has the measurements, which
/// have not settled it yet.
pub const DEFAULT_RUNTIME: &str = "crun";

/// How the user engine runs, from `corral.docker`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The engine image, when the configuration picks one.
    pub image: Option<String>,
    /// dockerd's TLS flags, when TLS is on.
    pub tls_flags: Vec<String>,
    /// Flags after Corral's fixed ones and TLS's: more sockets, `extra_args`.
    pub flags: Vec<String>,
    /// The socket's group.
    pub group: String,
    pub daemon_json: Map<String, Value>,
    /// The engine's environment (`HTTP_PROXY` and friends).
    pub environment: Vec<(String, String)>,
    /// Whether the engine serves TLS, so its certificates must exist.
    pub tls: bool,
    /// PEM texts from the configuration to use instead of generated TLS files.
    pub supplied_tls: Option<crate::tls::Supplied>,
    /// Settings Corral honours with a caveat.
    pub warnings: Vec<String>,
    /// The `daemon.json` keys `corral.docker` set (not Corral's defaults), and the keys
    /// of flags in `flags`: a user's own daemon.json does not change these.
    pub decided: Vec<String>,
}

impl Plan {
    /// dockerd's whole command line after the program name.
    pub fn args(&self, paths: &Paths) -> Vec<String> {
        let mut args = vec![
            format!("--host=unix://{}", paths.socket.display()),
            format!("--group={}", self.group),
            format!("--data-root={}", paths.data_root.display()),
            format!("--exec-root={}", paths.exec_root.display()),
            format!("--pidfile={}", paths.pidfile.display()),
            format!("--config-file={}", paths.config_file.display()),
        ];
        args.extend(self.tls_flags.iter().chain(&self.flags).map(|f| {
            // TLS file names are relative to the TLS folder, as in RancherOS.
            match f.split_once('=') {
                Some((flag @ ("--tlscacert" | "--tlscert" | "--tlskey"), file))
                    if !file.starts_with('/') =>
                {
                    format!("{flag}={}", paths.tls_dir.join(file).display())
                }
                _ => f.clone(),
            }
        }));
        args
    }

    /// `daemon.json`'s text.
    pub fn daemon_json_text(&self) -> String {
        serde_json::to_string_pretty(&Value::Object(self.daemon_json.clone())).unwrap_or_default()
            + "\n"
    }
}

/// Corral's TLS flags (RancherOS's defaults): verify clients, listen on 2376.
pub fn default_tls_args() -> Vec<String> {
    [
        "--tlsverify",
        "--tlscacert=ca.pem",
        "--tlscert=server-cert.pem",
        "--tlskey=server-key.pem",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--host=tcp://0.0.0.0:{}", crate::TLS_PORT)])
    .collect()
}

/// The plan for `engine`; `shutdown_timeout` is `corral.shutdown_timeout` (what each
/// container gets to stop when the engine stops).
pub fn plan(engine: &Engine, shutdown_timeout: Option<u32>) -> Result<Plan, Vec<EngineError>> {
    let (plan, errors) = build(engine, shutdown_timeout);
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// Corral's own settings, what the engine runs with when the configuration's cannot be
/// honoured.
pub fn defaults(shutdown_timeout: Option<u32>) -> Plan {
    build(&Engine::default(), shutdown_timeout).0
}

/// The plan and every problem with it.
fn build(engine: &Engine, shutdown_timeout: Option<u32>) -> (Plan, Vec<EngineError>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut json = Map::new();
    // Keys the user set, so that an `extra_args` override of a default stays quiet.
    let mut explicit: Vec<&str> = Vec::new();

    for (key, value, fix) in [
        ("graph", &engine.graph, "the user engine's data is always in /var/lib/docker, on the state partition when there is one"),
        ("exec_root", &engine.exec_root, "the engine's exec root is fixed at /var/run/docker"),
        ("pid_file", &engine.pid_file, "the engine's pid file is fixed at /var/run/docker.pid"),
        ("config_file", &engine.config_file, "Corral writes the engine's daemon.json from corral.docker; set the keys there"),
        ("containerd", &engine.containerd, "the engine runs its own containerd"),
        ("restart", &engine.restart, "the manager keeps the engine running"),
        ("exec", &engine.exec, "the engine always runs as its own service"),
    ] {
        if value.is_some() {
            warnings.push(format!("corral.docker.{key}: ignored; {fix}"));
        }
    }
    // RancherOS's default configuration sets it (`console`: the engine's mount
    // context); it only ever meant something under SELinux, so it is dropped quietly
    // but for a warning, never a reason to lose the user's other engine settings.
    if engine.storage_context.is_some() {
        warnings.push(
            "corral.docker.storage_context: ignored; Corral has no SELinux and the engine runs as its own service".to_string(),
        );
    }
    if let Some(v) = &engine.selinux_enabled {
        if v.as_bool() != Some(false) {
            warnings.push(
                "corral.docker.selinux_enabled: ignored; Corral's kernel runs without SELinux"
                    .to_string(),
            );
        }
    }

    // Set even when the engine would pick it: engines of any version then share a data
    // root (overlay2 and the classic image store, never the containerd snapshotters
    // that Docker 29 turns on for new installs).
    json.insert("storage-driver".into(), json!("overlay2"));
    json.insert("features".into(), json!({"containerd-snapshotter": false}));
    let runtimes: Map<String, Value> = RUNTIMES
        .iter()
        .map(|(name, path)| (name.to_string(), json!({ "path": path })))
        .collect();
    json.insert("runtimes".into(), Value::Object(runtimes));
    json.insert("default-runtime".into(), json!(DEFAULT_RUNTIME));
    if let Some(d) = &engine.storage_driver {
        if STORAGE_DRIVERS.contains(&d.as_str()) {
            json.insert("storage-driver".into(), json!(d));
            explicit.push("storage-driver");
        } else {
            warnings.push(unavailable_driver("corral.docker.storage_driver", d));
        }
    }

    let log_driver = engine.log_driver.as_deref();
    if let Some(d) = log_driver {
        if LOG_DRIVERS.contains(&d) {
            json.insert("log-driver".into(), json!(d));
            explicit.push("log-driver");
        } else if d == "journald" {
            errors.push(err(
                "log_driver",
                "Corral has no journald; use json-file, local or syslog",
            ));
        } else {
            errors.push(err(
                "log_driver",
                format!(
                    "{d:?} is not one of the engine's log drivers; use one of {}",
                    LOG_DRIVERS.join(", ")
                ),
            ));
        }
    }
    if !engine.log_opts.is_empty() {
        let opts: Map<String, Value> = engine
            .log_opts
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.0)))
            .collect();
        json.insert("log-opts".into(), Value::Object(opts));
        explicit.push("log-opts");
    } else if matches!(log_driver, None | Some("json-file") | Some("local")) {
        // Logs that cannot fill the disk: 3 files of 10 MB per container.
        json.insert(
            "log-driver".into(),
            json!(log_driver.unwrap_or("json-file")),
        );
        json.insert(
            "log-opts".into(),
            json!({"max-size": "10m", "max-file": "3"}),
        );
    }

    if let Some(b) = &engine.bridge {
        let ok = !b.is_empty()
            && b.len() <= 15
            && b.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            errors.push(err(
                "bridge",
                format!("{b:?} is not an interface name; use none, docker0 or an existing bridge's name (at most 15 characters)"),
            ));
        } else {
            json.insert("bridge".into(), json!(b));
            explicit.push("bridge");
            if engine.bip.is_some() && b != "docker0" {
                errors.push(err(
                    "bip",
                    format!(
                        "bip sets docker0's address, and bridge is {b:?}; remove one of the two"
                    ),
                ));
            }
        }
    }
    if let Some(bip) = &engine.bip {
        json.insert("bip".into(), json!(bip.0));
        explicit.push("bip");
    }
    if let Some(d) = engine.debug {
        json.insert("debug".into(), json!(d));
        explicit.push("debug");
    }
    if let Some(l) = engine.live_restore {
        json.insert("live-restore".into(), json!(l));
        explicit.push("live-restore");
    }
    if let Some(u) = engine.userland_proxy {
        json.insert("userland-proxy".into(), json!(u));
        explicit.push("userland-proxy");
    }
    if let Some(m) = &engine.registry_mirror {
        json.insert("registry-mirrors".into(), json!([m.0]));
        explicit.push("registry-mirrors");
    }
    if !engine.insecure_registry.is_empty() {
        json.insert(
            "insecure-registries".into(),
            json!(engine.insecure_registry),
        );
        explicit.push("insecure-registries");
    }
    json.insert(
        "shutdown-timeout".into(),
        json!(shutdown_timeout.unwrap_or(crate::DEFAULT_SHUTDOWN_TIMEOUT)),
    );

    let group = match engine.group.as_deref() {
        None => crate::GROUP.to_string(),
        Some(g) if g == crate::GROUP || g == "root" || g.parse::<u32>().is_ok() => g.to_string(),
        Some(g) => {
            errors.push(err(
                "group",
                format!(
                    "{g:?} is not a group in the engine; use docker (gid {}), root or a number",
                    crate::GROUP_ID
                ),
            ));
            crate::GROUP.to_string()
        }
    };

    let mut flags = Vec::new();
    for h in &engine.host {
        let scheme_ok = ["unix://", "tcp://", "fd://"]
            .iter()
            .any(|s| h.starts_with(s));
        if !scheme_ok {
            errors.push(err(
                "host",
                format!("{h:?} is not a socket address; write unix:///path or tcp://ADDRESS:PORT"),
            ));
            continue;
        }
        if h.starts_with("tcp://") && engine.tls != Some(true) {
            warnings.push(format!(
                "corral.docker.host: {h} serves the engine without TLS: whoever reaches it controls the machine; set corral.docker.tls: true"
            ));
        }
        flags.push(format!("--host={h}"));
    }

    let tls = engine.tls == Some(true);
    let tls_flags = match (&engine.tls_args, tls) {
        (Some(args), true) => args.iter().map(|a| a.0.clone()).collect(),
        (None, true) => default_tls_args(),
        (Some(_), false) => {
            warnings.push(
                "corral.docker.tls_args: ignored, because corral.docker.tls is not true".into(),
            );
            Vec::new()
        }
        (None, false) => Vec::new(),
    };
    let supplied = match crate::tls::Supplied::from_engine(engine) {
        Ok(s) => s,
        Err(e) => {
            errors.push(e);
            None
        }
    };

    // `args` is RancherOS's whole command ("daemon" or "dockerd" first); Corral keeps its
    // fixed flags and adds the rest, like `extra_args`. What RancherOS's files set that
    // Corral fixes is a warning (or its Corral meaning), never a reason to drop the rest.
    let words: Vec<&str> = engine
        .args
        .iter()
        .flatten()
        .map(|a| a.0.as_str())
        .skip_while(|a| matches!(*a, "daemon" | "dockerd" | "docker"))
        .chain(engine.extra_args.iter().map(|a| a.0.as_str()))
        .collect();
    let mut user_flags: Vec<String> = Vec::new();
    let mut group = group;
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        let (name, inline) = match word.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n, Some(v)),
            _ => (word, None),
        };
        let takes_value = FIXED_FLAGS.contains(&name) || VALUE_FLAGS.contains(&name);
        let value = match inline {
            Some(v) => Some(v),
            None if takes_value => words.get(i + 1).copied(),
            None => None,
        };
        i += if takes_value && inline.is_none() {
            2
        } else {
            1
        };
        let at = format!("corral.docker.extra_args: {name}");
        if FIXED_FLAGS.contains(&name) {
            warnings.push(format!(
                "{at} {}: ignored; the engine's files are Corral's (its data in /var/lib/docker, on the state partition)",
                value.unwrap_or_default()
            ));
            continue;
        }
        match (name, value) {
            ("--group" | "-G", Some(g)) => {
                if engine.group.is_none()
                    && (g == crate::GROUP || g == "root" || g.parse::<u32>().is_ok())
                {
                    group = g.to_string();
                } else if g != group {
                    warnings.push(format!(
                        "{at} {g}: ignored; the socket's group is {group} (corral.docker.group)"
                    ));
                }
                continue;
            }
            ("-H" | "--host", Some(h))
                if h == "unix:///var/run/docker.sock" || h == "unix:///run/docker.sock" =>
            {
                // Corral's own socket, there already.
                continue;
            }
            ("-s" | "--storage-driver", Some(d)) if !STORAGE_DRIVERS.contains(&d) => {
                warnings.push(unavailable_driver(&at, d));
                continue;
            }
            _ => {}
        }
        if let Some((_, key)) = FLAG_KEYS.iter().find(|(f, _)| *f == name) {
            if json.remove(*key).is_some() && explicit.contains(key) {
                warnings.push(format!(
                    "corral.docker.extra_args: {name} overrides the engine's {key} setting"
                ));
            }
        }
        match (inline, value) {
            (None, Some(v)) if takes_value => {
                user_flags.push(name.to_string());
                user_flags.push(v.to_string());
            }
            _ => user_flags.push(word.to_string()),
        }
    }
    if !json.contains_key("runtimes") && json.remove("default-runtime").is_some() {
        // dockerd refuses a default runtime it does not know.
        warnings.push(format!(
            "corral.docker.extra_args: --add-runtime replaces the engine's runtimes ({}); \
             containers run with runc unless --default-runtime names one of yours",
            RUNTIMES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut decided: Vec<String> = explicit.iter().map(|k| k.to_string()).collect();
    for f in &user_flags {
        let name = f.split_once('=').map_or(f.as_str(), |(n, _)| n);
        if let Some((_, key)) = FLAG_KEYS.iter().find(|(flag, _)| *flag == name) {
            decided.push(key.to_string());
        }
        // dockerd's daemon.json keys are its long flags' names (lists in the plural).
        if let Some(long) = name.strip_prefix("--") {
            decided.push(long.to_string());
            decided.push(format!("{long}s"));
        }
    }
    flags.extend(user_flags);

    let plan = Plan {
        image: engine.engine.clone(),
        tls_flags,
        flags,
        group,
        daemon_json: json,
        environment: engine.environment.0.clone(),
        tls,
        supplied_tls: supplied,
        warnings,
        decided,
    };
    (plan, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(yaml: &str) -> Engine {
        let doc: corral_config::CloudConfig =
            yaml_serde::from_str(&format!("corral:\n  docker:\n{yaml}")).expect("parses");
        doc.corral.docker
    }

    fn errors(yaml: &str) -> Vec<String> {
        plan(&engine(yaml), None)
            .expect_err(yaml)
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn defaults_are_bounded_logs_and_the_fixed_paths() {
        let p = plan(&Engine::default(), None).expect("plan");
        assert_eq!(p, defaults(None));
        assert_eq!(
            Value::Object(p.daemon_json.clone()),
            json!({
                "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"},
                "shutdown-timeout": 10, "storage-driver": "overlay2",
                "features": {"containerd-snapshotter": false},
                "runtimes": {"crun": {"path": "/usr/bin/crun"}}, "default-runtime": "crun"
            })
        );
        assert_eq!(
            p.args(&Paths::engine()),
            [
                "--host=unix:///var/run/docker.sock",
                "--group=docker",
                "--data-root=/var/lib/docker",
                "--exec-root=/var/run/docker",
                "--pidfile=/var/run/docker.pid",
                "--config-file=/etc/docker/daemon.json",
            ]
        );
        assert!(!p.tls && p.image.is_none() && p.warnings.is_empty());
    }

    #[test]
    fn a_users_runtimes_replace_crun_and_the_default_falls_back_to_runc() {
        let p = plan(
            &engine("    extra_args: ['--add-runtime=kata=/opt/kata/bin/runtime']\n"),
            None,
        )
        .expect("plan");
        assert!(!p.daemon_json.contains_key("runtimes"));
        assert!(!p.daemon_json.contains_key("default-runtime"));
        assert!(p.warnings[0].contains("--add-runtime replaces the engine's runtimes (crun)"));
        let p = plan(&engine("    extra_args: [--default-runtime=runc]\n"), None).expect("plan");
        assert!(p.daemon_json.contains_key("runtimes"));
        assert!(!p.daemon_json.contains_key("default-runtime"));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn every_key_lands_in_daemon_json() {
        let p = plan(
            &engine(
                "    storage_driver: vfs\n    log_driver: local\n    log_opts: {max-size: 1m}\n\
                 \x20   bip: 10.7.0.1/24\n    bridge: docker0\n    debug: true\n    live_restore: true\n\
                 \x20   userland_proxy: false\n    registry_mirror: http://mirror:5000\n\
                 \x20   insecure_registry: [reg:5000]\n    environment: [HTTP_PROXY=http://p:3128]\n\
                 \x20   engine: corral/engine:test\n    group: root\n",
            ),
            Some(25),
        )
        .expect("plan");
        assert_eq!(
            Value::Object(p.daemon_json.clone()),
            json!({
                "storage-driver": "vfs", "log-driver": "local", "log-opts": {"max-size": "1m"},
                "bip": "10.7.0.1/24", "bridge": "docker0", "debug": true, "live-restore": true,
                "userland-proxy": false, "registry-mirrors": ["http://mirror:5000"],
                "insecure-registries": ["reg:5000"], "shutdown-timeout": 25,
                "features": {"containerd-snapshotter": false},
                "runtimes": {"crun": {"path": "/usr/bin/crun"}}, "default-runtime": "crun",
            })
        );
        assert_eq!(
            p.environment,
            [("HTTP_PROXY".to_string(), "http://p:3128".to_string())]
        );
        assert_eq!(p.image.as_deref(), Some("corral/engine:test"));
        assert!(p
            .args(&Paths::engine())
            .contains(&"--group=root".to_string()));
    }

    #[test]
    fn tls_uses_the_tls_folder_and_port_2376() {
        let p = plan(&engine("    tls: true\n"), None).expect("plan");
        let args = p.args(&Paths::engine());
        for want in [
            "--tlsverify",
            "--tlscacert=/etc/docker/tls/ca.pem",
            "--tlscert=/etc/docker/tls/server-cert.pem",
            "--tlskey=/etc/docker/tls/server-key.pem",
            "--host=tcp://0.0.0.0:2376",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
        assert!(p.tls);
        // RancherOS's own tls_args, relative names and all, work unchanged.
        let p = plan(
            &engine("    tls: true\n    tls_args: [--tlsverify, --tlscacert=ca.pem, --tlscert=server-cert.pem, --tlskey=server-key.pem, '-H=0.0.0.0:2376']\n"),
            None,
        )
        .expect("plan");
        let args = p.args(&Paths::engine());
        assert!(args.contains(&"--tlscacert=/etc/docker/tls/ca.pem".to_string()));
        assert!(args.contains(&"-H=0.0.0.0:2376".to_string()));
        let p = plan(&engine("    tls_args: [--tlsverify]\n"), None).expect("plan");
        assert!(!p.tls && p.tls_flags.is_empty() && p.flags.is_empty());
        assert!(
            p.warnings[0].contains("tls_args: ignored"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn extra_args_win_over_daemon_json() {
        let p = plan(
            &engine("    log_driver: syslog\n    extra_args: [--log-driver=none, --mtu=1400]\n"),
            None,
        )
        .expect("plan");
        assert!(!p.daemon_json.contains_key("log-driver"));
        assert_eq!(p.flags, ["--log-driver=none", "--mtu=1400"]);
        assert!(
            p.warnings[0].contains("--log-driver overrides"),
            "{:?}",
            p.warnings
        );
        // A default overridden quietly; RancherOS's `args` with its leading "daemon".
        let p = plan(
            &engine("    args: [daemon, --log-opt, max-size=1m]\n"),
            None,
        )
        .expect("plan");
        assert!(!p.daemon_json.contains_key("log-opts"));
        assert_eq!(p.flags, ["--log-opt", "max-size=1m"]);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_value_the_engine_cannot_take_is_an_error_naming_the_key() {
        for (yaml, key, fix) in [
            ("    log_driver: journald\n", "log_driver", "no journald"),
            ("    log_driver: splunky\n", "log_driver", "json-file"),
            ("    group: wheel\n", "group", "gid 233"),
            ("    bridge: 'br 0'\n", "bridge", "interface name"),
            (
                "    bridge: br0\n    bip: 10.0.0.1/24\n",
                "bip",
                "remove one",
            ),
            ("    host: [0.0.0.0:2375]\n", "host", "tcp://"),
            ("    server_cert: x\n", "ca_cert", "together"),
        ] {
            let errs = errors(yaml);
            assert!(
                errs.iter()
                    .any(|e| e.starts_with(&format!("corral.docker.{key}: ")) && e.contains(fix)),
                "{yaml}: {errs:?}"
            );
        }
        // Every problem at once, not the first only.
        assert_eq!(
            errors("    log_driver: journald\n    group: wheel\n").len(),
            2
        );
        // selinux_enabled: false asks for nothing Corral lacks.
        let p = plan(&engine("    selinux_enabled: false\n"), None).expect("plan");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn what_corral_fixes_is_a_warning_and_the_rest_applies() {
        for (yaml, key, says) in [
            (
                "    storage_driver: devicemapper\n",
                "storage_driver",
                "uses overlay2",
            ),
            ("    graph: /mnt/docker\n", "graph", "ignored"),
            ("    exec_root: /run/x\n", "exec_root", "ignored"),
            (
                "    selinux_enabled: true\n",
                "selinux_enabled",
                "without SELinux",
            ),
            (
                "    extra_args: [--data-root=/x]\n",
                "extra_args: --data-root /x",
                "ignored",
            ),
            (
                "    extra_args: [-G, wheel]\n",
                "extra_args: -G wheel",
                "ignored",
            ),
        ] {
            let p = plan(&engine(&format!("{yaml}    debug: true\n")), None)
                .unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
            assert!(
                p.warnings
                    .iter()
                    .any(|w| w.starts_with(&format!("corral.docker.{key}")) && w.contains(says)),
                "{yaml}: {:?}",
                p.warnings
            );
            assert_eq!(
                p.daemon_json["debug"],
                json!(true),
                "{yaml}: the rest applies"
            );
        }
    }

    #[test]
    fn rancheros_default_args_are_read_for_what_they_mean_in_corral() {
        // RancherOS's own default `args`, as its docs show them.
        let p = plan(
            &engine("    args: [daemon, --log-opt, max-size=25m, --log-opt, max-file=2, -s, overlay, -G, docker, -H, 'unix:///var/run/docker.sock', --userland-proxy=false, -g, /mnt/docker]\n"),
            None,
        )
        .expect("a plan");
        assert_eq!(
            p.flags,
            [
                "--log-opt",
                "max-size=25m",
                "--log-opt",
                "max-file=2",
                "--userland-proxy=false"
            ],
            "{:?}",
            p.warnings
        );
        assert_eq!(p.group, "docker");
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("\"overlay\" is not in Corral's engine"));
        assert!(p.warnings[1].contains("-g /mnt/docker: ignored"));
        // The log options given as flags replace the engine's own in daemon.json.
        assert!(!p.daemon_json.contains_key("log-opts"));
    }

    #[test]
    fn rancheros_default_storage_context_is_a_warning_and_the_other_settings_apply() {
        let p = plan(
            &engine("    storage_context: console\n    debug: true\n"),
            None,
        )
        .expect("a plan, not the defaults");
        assert!(
            p.flags.iter().any(|f| f == "--debug")
                || p.daemon_json_text().contains("\"debug\": true")
        );
        assert!(
            p.warnings
                .iter()
                .any(|w| w.starts_with("corral.docker.storage_context: ignored")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn a_tcp_socket_without_tls_is_served_with_a_warning() {
        let p = plan(&engine("    host: ['tcp://0.0.0.0:2375']\n"), None).expect("plan");
        assert!(p.flags.contains(&"--host=tcp://0.0.0.0:2375".to_string()));
        assert!(p.warnings[0].contains("without TLS"), "{:?}", p.warnings);
    }
}
