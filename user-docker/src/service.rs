//! The `docker` service's definition from `corral.docker`: dockerd's flags as its
//! command, the engine image, the environment, `daemon.json` and, with TLS, the
//! certificates mounted in. Pure over the services file except for the files it writes
//! into [`Dirs`]; the manager calls it before the service starts.

use crate::daemon::{self, Paths, Plan};
use crate::{tls, SERVICE};
use corral_compose::{ServicesFile, StringOrList};
use corral_config::store::Effective;
use log::Level;
use std::path::PathBuf;

/// Kernel modules the engine needs loaded before it starts: containers on a bridge see
/// iptables rules only with br_netfilter (which brings `bridge`), and overlay2 needs
/// `overlay`.
pub const MODULES: &[&str] = &["br_netfilter", "overlay"];

/// What dockerd gives a container that sets no stop time of its own (moby's
/// `DefaultStopTimeout`), at its way down as at `docker stop`.
const DOCKERD_CONTAINER_STOP: u64 = 10;
/// What dockerd waits beyond its containers' stop time before it gives up on them and
/// exits anyway (moby's shutdown grace).
const DOCKERD_GRACE: u64 = 5;
/// What is left after dockerd has exited: `corral-engine` stopping containerd
/// ([`crate::engine_init::CONTAINERD_STOP`]), and the margin for a busy machine.
const AFTER_DOCKERD: u64 = crate::engine_init::CONTAINERD_STOP.as_secs() + 5;
/// The longest `shutdown-timeout` taken from a `daemon.json` (an hour).
const MAX_SHUTDOWN_TIMEOUT: u64 = 3600;
/// How much of `daemon.json` is read for its `shutdown-timeout`.
const MAX_DAEMON_JSON: u64 = 1 << 20;

/// How long the `docker` service must be given between its stop signal and SIGKILL for
/// the engine to go down its own way: dockerd stops every workload within its stop time
/// (10 s, or `shutdown-timeout` from the `daemon.json` in `config` when longer; a user's
/// own `daemon.json` may set it), deletes their tasks and exits, then `corral-engine`
/// stops containerd. Killed sooner, dockerd dies while it deletes the tasks, and a
/// workload's runtime state can outlive it ("container already exists" at its next
/// start). 30 s with the defaults. A workload started with a `--stop-timeout` above
/// that can still be cut short.
pub fn stop_seconds(config: &std::path::Path) -> u64 {
    let configured = shutdown_timeout(&config.join("daemon.json"))
        .unwrap_or(u64::from(crate::DEFAULT_SHUTDOWN_TIMEOUT));
    configured.max(DOCKERD_CONTAINER_STOP + DOCKERD_GRACE) + AFTER_DOCKERD
}

/// How long each workload gets to stop when they are stopped through the engine's API
/// (with `live-restore`): `shutdown-timeout` from the `daemon.json` in `config`, 10 s
/// without one, as dockerd itself would give them.
pub fn workload_stop_seconds(config: &std::path::Path) -> u64 {
    shutdown_timeout(&config.join("daemon.json"))
        .unwrap_or(u64::from(crate::DEFAULT_SHUTDOWN_TIMEOUT))
}

/// Whether the `daemon.json` in `config` turns on `live-restore`: dockerd then leaves
/// its containers running when it stops, and the way down must stop them itself.
pub fn live_restore(config: &std::path::Path) -> bool {
    daemon_json(&config.join("daemon.json"))
        .and_then(|json| json.get("live-restore")?.as_bool())
        .unwrap_or(false)
}

/// `shutdown-timeout` in the `daemon.json` at `path` (at most [`MAX_SHUTDOWN_TIMEOUT`]);
/// None when the file, the key or a whole number is missing.
fn shutdown_timeout(path: &std::path::Path) -> Option<u64> {
    let seconds = daemon_json(path)?.get("shutdown-timeout")?.as_u64()?;
    Some(seconds.min(MAX_SHUTDOWN_TIMEOUT))
}

/// The `daemon.json` at `path` (its first MiB), when it is JSON.
fn daemon_json(path: &std::path::Path) -> Option<serde_json::Value> {
    crate::read_json(path, MAX_DAEMON_JSON)
}

/// Where the service's files go on the host; tests use a temporary folder.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// `daemon.json` is written here (mounted at /etc/docker in the engine).
    pub config: PathBuf,
    /// The TLS files (mounted at /etc/docker/tls when TLS is on).
    pub tls: PathBuf,
    /// The user who gets the TLS client files, as (home's `.docker`, uid, gid).
    pub client: Option<(PathBuf, u32, u32)>,
}

impl Dirs {
    pub fn host() -> Dirs {
        Dirs {
            config: crate::CONFIG_DIR.into(),
            tls: crate::TLS_DIR.into(),
            client: Some(("/home/corral/.docker".into(), 1100, 1100)),
        }
    }

    /// Everything under `root` (`conf`, `tls`, `home/.docker`), the client files owned
    /// by whoever runs this: for tests.
    pub fn under(root: &std::path::Path) -> Dirs {
        Dirs {
            config: root.join("conf"),
            tls: root.join("tls"),
            client: Some((
                root.join("home/.docker"),
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            )),
        }
    }
}

/// The engine's plan from the configuration; when the configuration asks for what the
/// engine cannot do, every problem is reported and the engine runs with Corral's
/// defaults, so that a bad setting never leaves the machine without its engine.
pub fn plan(effective: &Effective, report: &mut Vec<(Level, String)>) -> Plan {
    let corral = &effective.config.corral;
    match daemon::plan(&corral.docker, corral.shutdown_timeout) {
        Ok(mut p) => {
            report.extend(p.warnings.iter().map(|w| (Level::Warn, w.clone())));
            // A user's own daemon.json (`write_files`), merged in.
            let own = effective
                .config
                .write_files
                .iter()
                .rfind(|f| f.container.is_none() && &*f.path == crate::user_json::PATH);
            if let Some(file) = own {
                match crate::user_json::merge(&mut p, &file.content) {
                    Ok(warnings) => report.extend(warnings.into_iter().map(|w| (Level::Warn, w))),
                    Err(e) => report.push((Level::Error, e)),
                }
            }
            for w in crate::swarm::add_labels(&mut p, &corral.swarm.labels) {
                report.push((Level::Warn, w));
            }
            p
        }
        Err(errors) => {
            for e in errors {
                report.push((
                    Level::Error,
                    format!("{e}; the user engine starts with Corral's default settings"),
                ));
            }
            let mut p = daemon::defaults(corral.shutdown_timeout);
            for w in crate::swarm::add_labels(&mut p, &corral.swarm.labels) {
                report.push((Level::Warn, w));
            }
            p
        }
    }
}

/// Fills in the `docker` service of `file` from `plan`: dockerd's flags as its command,
/// the engine image, the environment, `daemon.json` (written into `dirs.config`) and,
/// with TLS, the certificates (made once in `dirs.tls`, for the server `names`).
/// Returns what it did and what went wrong.
pub fn configure_service(
    file: &mut ServicesFile,
    plan: &Plan,
    dirs: &Dirs,
    names: &[String],
) -> Vec<(Level, String)> {
    let mut report = Vec::new();
    let Some(service) = file.services.get_mut(SERVICE) else {
        return report;
    };
    let json = plan.daemon_json_text();
    let path = dirs.config.join("daemon.json");
    let written = std::fs::create_dir_all(&dirs.config).and_then(|()| std::fs::write(&path, &json));
    if let Err(e) = written {
        report.push((Level::Error, format!("writing {}: {e}", path.display())));
    }
    if let Some(image) = &plan.image {
        service.image = image.clone();
    }
    service.command = StringOrList::Many(plan.args(&Paths::engine()));
    // The CAs write_files put under /etc/ssl/certs (corral_dockerd::EXTRA_CERTS_DIR);
    // a SSL_CERT_DIR of the user's own wins.
    service
        .environment
        .set("SSL_CERT_DIR", corral_dockerd::SSL_CERT_DIR, true);
    for (k, v) in &plan.environment {
        service.environment.set(k, v, true);
    }
    // A changed daemon.json changes the service's definition, so the engine restarts.
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(json.as_bytes()));
    service
        .environment
        .set("CORRAL_DAEMON_JSON_SHA256", &hash, true);
    if plan.tls {
        if let Err(why) = tls_files(service, plan, dirs, names, &mut report) {
            report.push((
                Level::Error,
                format!("{why}; the user engine starts without TLS"),
            ));
            // Without its files dockerd would not start at all: leave the TLS flags out.
            service.command = StringOrList::Many(
                Plan {
                    tls_flags: Vec::new(),
                    ..plan.clone()
                }
                .args(&Paths::engine()),
            );
        }
    }
    report
}

/// Makes sure the engine's TLS files exist and mounts them into the service; gives the
/// client its copy. Errors only for what dockerd itself needs.
fn tls_files(
    service: &mut corral_compose::Service,
    plan: &Plan,
    dirs: &Dirs,
    names: &[String],
    report: &mut Vec<(Level, String)>,
) -> Result<(), String> {
    let made =
        tls::ensure(&dirs.tls, names, plan.supplied_tls.as_ref()).map_err(|e| e.to_string())?;
    // The mount point, inside the /etc/docker mount.
    let point = dirs.config.join("tls");
    std::fs::create_dir_all(&point).map_err(|e| format!("making {}: {e}", point.display()))?;
    service.volumes.push(format!(
        "{}:{}:ro",
        dirs.tls.display(),
        crate::TLS_IN_ENGINE
    ));
    report.push((
        Level::Info,
        format!(
            "user engine TLS on port {}: certificates {} in {}",
            crate::TLS_PORT,
            match made {
                tls::Made::Kept => "kept",
                tls::Made::Generated => "made",
                tls::Made::Supplied => "from corral.docker",
            },
            dirs.tls.display()
        ),
    ));
    if let Some((home, uid, gid)) = &dirs.client {
        // The server still serves without the client's copy; other clients can connect.
        if let Err(e) = tls::install_client(&dirs.tls, home, *uid, *gid) {
            report.push((Level::Error, e.to_string()));
        }
    }
    Ok(())
}

/// Host names and addresses for the server certificate: the host name and every
/// address the machine has now.
pub fn server_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(h.trim().to_string());
    }
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let ip = a.address.as_ref().and_then(|s| {
                s.as_sockaddr_in()
                    .map(|v4| std::net::IpAddr::V4(v4.ip()))
                    .or_else(|| s.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip())))
            });
            if let Some(ip) = ip {
                if !ip.is_loopback() && !names.contains(&ip.to_string()) {
                    names.push(ip.to_string());
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration in force from one YAML text.
    pub fn effective(yaml: &str) -> Effective {
        let value: yaml_serde::Value = yaml_serde::from_str(yaml).expect("yaml");
        Effective {
            config: yaml_serde::from_value(value.clone()).expect("config"),
            value,
            ..Effective::default()
        }
    }

    fn file() -> ServicesFile {
        corral_compose::parse(
            "os-config.yml",
            "services:\n  docker:\n    image: corral/engine:1\n    volumes: [/var/lib/docker:/var/lib/docker]\n",
        )
        .expect("parses")
    }

    #[test]
    fn the_engine_is_given_its_workloads_stop_time_and_dockerds_own_way_down_and_live_restore_is_read(
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        // No daemon.json yet, or one that does not say: dockerd's 10 s + 5 s, then
        // containerd's stop and the margin.
        assert_eq!(stop_seconds(tmp.path()), 30);
        let json = tmp.path().join("daemon.json");
        for (text, want) in [
            (r#"{"shutdown-timeout": 7}"#, 30),
            (r#"{"shutdown-timeout": 60}"#, 75),
            (r#"{"shutdown-timeout": 99999999}"#, 3615),
            (r#"{"shutdown-timeout": -1}"#, 30),
            (r#"{"shutdown-timeout": "60"}"#, 30),
            ("{", 30),
        ] {
            std::fs::write(&json, text).expect("daemon.json");
            assert_eq!(stop_seconds(tmp.path()), want, "{text}");
        }
        assert!(!live_restore(tmp.path()));
        std::fs::write(&json, r#"{"live-restore": true, "shutdown-timeout": 10}"#)
            .expect("daemon.json");
        assert!(live_restore(tmp.path()));
        std::fs::write(&json, r#"{"live-restore": "yes"}"#).expect("daemon.json");
        assert!(!live_restore(tmp.path()));
    }

    #[test]
    fn the_service_gets_dockerds_flags_image_and_daemon_json() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let e = effective(
            "corral:\n  docker:\n    engine: my/engine:2\n    debug: true\n    environment: [HTTP_PROXY=http://p]\n",
        );
        let mut report = Vec::new();
        let p = plan(&e, &mut report);
        let mut f = file();
        let lines = configure_service(&mut f, &p, &Dirs::under(tmp.path()), &[]);
        assert!(
            report.is_empty() && lines.is_empty(),
            "{report:?} {lines:?}"
        );
        let s = &f.services[SERVICE];
        assert_eq!(s.image, "my/engine:2");
        assert!(s
            .command
            .to_vec()
            .contains(&"--host=unix:///var/run/docker.sock".to_string()));
        let env = s.environment.to_map();
        assert_eq!(env["HTTP_PROXY"], "http://p");
        let json = std::fs::read_to_string(tmp.path().join("conf/daemon.json")).expect("json");
        assert!(json.contains("\"debug\": true"), "{json}");
        // Another daemon.json, another definition: the engine restarts with it.
        let before = env["CORRAL_DAEMON_JSON_SHA256"].clone();
        let p = plan(
            &effective("corral:\n  docker:\n    debug: false\n"),
            &mut report,
        );
        let mut f = file();
        configure_service(&mut f, &p, &Dirs::under(tmp.path()), &[]);
        assert_ne!(
            f.services[SERVICE].environment.to_map()["CORRAL_DAEMON_JSON_SHA256"],
            before
        );
    }

    #[test]
    fn a_daemon_json_from_write_files_is_merged_into_corrals() {
        let mut report = Vec::new();
        let p = plan(
            &effective(
                "write_files:\n  - path: /etc/docker/daemon.json\n    content: '{\"labels\": [\"from=write_files\"], \"debug\": false}'\ncorral:\n  docker:\n    debug: true\n",
            ),
            &mut report,
        );
        assert_eq!(
            p.daemon_json["labels"],
            serde_json::json!(["from=write_files"])
        );
        assert_eq!(p.daemon_json["debug"], serde_json::json!(true));
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(
            report[0].1.contains("debug: corral.docker sets it"),
            "{report:?}"
        );
    }

    #[test]
    fn a_setting_the_engine_cannot_honour_leaves_the_defaults_and_says_why() {
        let mut report = Vec::new();
        let p = plan(
            &effective("corral:\n  docker:\n    log_driver: journald\n    debug: true\n"),
            &mut report,
        );
        assert_eq!(report.len(), 1, "{report:?}");
        assert_eq!(report[0].0, Level::Error);
        assert!(
            report[0].1.starts_with("corral.docker.log_driver: "),
            "{report:?}"
        );
        assert!(
            report[0].1.ends_with("Corral's default settings"),
            "{report:?}"
        );
        assert!(!p.daemon_json.contains_key("debug"));
    }

    #[test]
    fn tls_makes_the_files_once_mounts_them_and_gives_the_client_its_own() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut report = Vec::new();
        let p = plan(
            &effective("corral:\n  docker:\n    tls: true\n"),
            &mut report,
        );
        let mut f = file();
        let lines = configure_service(&mut f, &p, &Dirs::under(tmp.path()), &["corral-1".into()]);
        assert!(lines[0].1.contains("certificates made"), "{lines:?}");
        let s = &f.services[SERVICE];
        assert!(s.volumes.contains(&format!(
            "{}:/etc/docker/tls:ro",
            tmp.path().join("tls").display()
        )));
        assert!(s.command.to_vec().contains(&"--tlsverify".to_string()));
        assert!(tmp.path().join("home/.docker/key.pem").is_file());
        assert!(
            tmp.path().join("conf/tls").is_dir(),
            "the mount point exists"
        );
        let mut f = file();
        let lines = configure_service(&mut f, &p, &Dirs::under(tmp.path()), &[]);
        assert!(lines[0].1.contains("certificates kept"), "{lines:?}");
    }

    #[test]
    fn without_its_tls_files_the_engine_serves_its_socket_and_keeps_the_other_flags() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut d = Dirs::under(tmp.path());
        // A file where the TLS folder should be: the files cannot be made.
        d.tls = tmp.path().join("not-a-dir");
        std::fs::write(&d.tls, "").expect("w");
        let mut report = Vec::new();
        let p = plan(
            &effective("corral:\n  docker:\n    tls: true\n    extra_args: [--mtu=1400]\n"),
            &mut report,
        );
        let mut f = file();
        let lines = configure_service(&mut f, &p, &d, &[]);
        assert!(
            lines
                .iter()
                .any(|(l, m)| *l == Level::Error && m.ends_with("starts without TLS")),
            "{lines:?}"
        );
        let args = f.services[SERVICE].command.to_vec();
        assert!(!args.iter().any(|a| a.starts_with("--tls")), "{args:?}");
        assert!(args.contains(&"--mtu=1400".to_string()), "{args:?}");
        assert!(!f.services[SERVICE]
            .volumes
            .iter()
            .any(|v| v.contains("/etc/docker/tls")));
    }
}
