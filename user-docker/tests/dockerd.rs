//! The flags and daemon.json made from `corral.docker`, given to a real dockerd
//! (Debian's docker.io, installed by the setup step) on a private socket: it must start
//! with them, and report every setting back through its API. TLS is checked with the
//! docker CLI against the generated certificates.

use corral_user_docker::daemon::{plan, Paths};
use corral_user_docker::tls;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "current_thread")]
async fn dockerd_accepts_every_setting_and_reports_it_back() {
    corral_harness::require_dockerd();
    let root = tempfile::tempdir().expect("temp dir");
    let r = root.path();
    let port = corral_harness::free_port().expect("a free port");
    // Every key a build host can take. The bridge stays off and iptables alone (through
    // extra_args), so the host's network is not touched; bip and docker0 are checked in
    // QEMU (tests/tests/user_engine.rs).
    let yaml = format!(
        "corral:\n  shutdown_timeout: 7\n  docker:\n    storage_driver: vfs\n    log_driver: local\n\
         \x20   log_opts: {{max-size: 1m, max-file: '2'}}\n    debug: true\n    live_restore: true\n\
         \x20   userland_proxy: false\n    registry_mirror: http://127.0.0.1:5999\n\
         \x20   insecure_registry: ['127.0.0.1:5998']\n    bridge: none\n    group: root\n\
         \x20   environment: [HTTP_PROXY=http://127.0.0.1:3128]\n\
         \x20   extra_args: [--iptables=false, --ip-masq=false, --ip-forward=false]\n\
         \x20   tls: true\n    tls_args: [--tlsverify, --tlscacert=ca.pem, --tlscert=server-cert.pem, --tlskey=server-key.pem, '-H=tcp://127.0.0.1:{port}']\n"
    );
    let config: corral_config::CloudConfig = yaml_serde::from_str(&yaml).expect("config");
    let p = plan(&config.corral.docker, config.corral.shutdown_timeout).expect("a plan");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let paths = Paths {
        socket: r.join("docker.sock"),
        data_root: r.join("data"),
        exec_root: r.join("exec"),
        pidfile: r.join("docker.pid"),
        config_file: r.join("daemon.json"),
        tls_dir: r.join("tls"),
    };
    std::fs::write(&paths.config_file, p.daemon_json_text()).expect("daemon.json");
    tls::ensure(&paths.tls_dir, &[], None).expect("TLS files");
    let log = std::fs::File::create(r.join("dockerd.log")).expect("log");
    let mut child = std::process::Command::new("dockerd")
        .args(p.args(&paths))
        .envs(p.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("dockerd starts");
    let log_tail = || {
        let text = std::fs::read_to_string(r.join("dockerd.log")).unwrap_or_default();
        text.lines().rev().take(15).collect::<Vec<_>>().join("\n")
    };

    let socket = paths.socket.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    let docker = loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "dockerd refused the configuration ({status}):\n{}",
                log_tail()
            );
        }
        if let Ok(d) = bollard::Docker::connect_with_unix(&socket, 30, bollard::API_DEFAULT_VERSION)
        {
            if d.ping().await.is_ok() {
                break d.negotiate_version().await.expect("version");
            }
        }
        assert!(
            Instant::now() < deadline,
            "dockerd never answered:\n{}",
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let info = docker.info().await.expect("info");
    assert_eq!(info.driver.as_deref(), Some("vfs"));
    assert_eq!(info.logging_driver.as_deref(), Some("local"));
    assert_eq!(info.debug, Some(true));
    assert_eq!(info.live_restore_enabled, Some(true));
    assert_eq!(info.http_proxy.as_deref(), Some("http://127.0.0.1:3128"));
    // crun beside runc, and the default (the build host's crun, from the setup step).
    assert_eq!(info.default_runtime.as_deref(), Some("crun"));
    assert!(
        info.runtimes.unwrap_or_default().contains_key("crun"),
        "crun is a runtime"
    );
    assert_eq!(
        info.docker_root_dir.as_deref(),
        Some(paths.data_root.to_str().expect("utf-8"))
    );
    let registries = info.registry_config.expect("registry config");
    assert!(
        registries
            .mirrors
            .unwrap_or_default()
            .iter()
            .any(|m| m.starts_with("http://127.0.0.1:5999")),
        "the mirror"
    );
    assert!(
        registries
            .index_configs
            .unwrap_or_default()
            .get("127.0.0.1:5998")
            .and_then(|c| c.secure)
            == Some(false),
        "the insecure registry"
    );
    // The socket's group is the configuration's, mode 0660.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&paths.socket).expect("socket");
    assert_eq!((meta.gid(), meta.mode() & 0o777), (0, 0o660));

    // TLS with the generated files: the client's certificate gets in, none does not.
    let cli = |cert_path: &std::path::Path, verify: bool| {
        let mut c = std::process::Command::new("docker");
        c.env("DOCKER_CERT_PATH", cert_path);
        if verify {
            c.arg("--tlsverify");
        } else {
            c.arg("--tls");
        }
        c.args([
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
            "version",
            "--format",
            "{{.Server.Version}}",
        ]);
        c.output().expect("docker CLI runs")
    };
    let client = r.join("client");
    tls::install_client(
        &paths.tls_dir,
        &client,
        nix::unistd::getuid().as_raw(),
        nix::unistd::getgid().as_raw(),
    )
    .expect("client files");
    let out = cli(&client, true);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("20.10"),
        "TLS with the client certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&r.join("nothing-here"), false);
    assert!(
        !out.status.success(),
        "TLS without a client certificate got in"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "dockerd did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
