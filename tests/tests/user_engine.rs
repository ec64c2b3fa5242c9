//! End-to-end: the user engine, in QEMU, through ssh as the `corral` user. One boot
//! configured by a NoCloud seed checks loading and running a workload, a published port
//! reached from the build host, the two engines' separation, a console restart that
//! leaves workloads alone, TLS on 2376, preload, an engine image that is not there, and
//! the engine stopping its workloads itself at a restart and at poweroff.

use corral_harness::{
    artifact, free_port, log_dir, nocloud_iso, preload_bootcmd, test_image, Boot, Drive, KeyPair,
    Ssh, Vm, VmConfig,
};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(300);
const CMD: Duration = Duration::from_secs(120);
/// The test image's reference (tests/images/busybox, built with the OS version).
const BUSYBOX: &str = "corral/busybox:0.1.0";

/// GET / from 127.0.0.1:`port` (a QEMU hostfwd); the whole response.
fn http_get(port: u16) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn gzip(src: &Path, dest: &Path) {
    let out = std::process::Command::new("gzip")
        .arg("-c")
        .arg(src)
        .output()
        .expect("gzip runs");
    assert!(out.status.success(), "gzip failed");
    std::fs::write(dest, out.stdout).expect("write the gzipped archive");
}

#[test]
fn the_user_engine_runs_workloads_apart_from_the_system() {
    let dir = log_dir("user-engine");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-engine").expect("key pair");
    let archive = test_image("busybox");
    // The seed carries a gzipped copy of the test image, which bootcmd puts in the
    // preload folder before the engine starts.
    let seed = dir.join("cidata");
    std::fs::create_dir_all(&seed).expect("seed dir");
    gzip(&archive, &seed.join("busybox.tar.gz"));
    let user_data = format!(
        "#cloud-config\n\
         ssh_authorized_keys:\n  - {key}\n\
         {bootcmd}\
         rancher:\n\
         \x20 shutdown_timeout: 20\n\
         \x20 docker:\n\
         \x20   tls: true\n\
         \x20   bip: 10.88.0.1/16\n\
         \x20   log_opts: {{max-size: 5m}}\n\
         \x20   engine: corral/no-such-engine:1\n",
        bootcmd = preload_bootcmd("busybox.tar.gz"),
        key = key.public
    );
    let iso = nocloud_iso(&dir, user_data.as_bytes(), "instance-id: engine-1\n").expect("seed");
    let mut cfg = VmConfig::new(Boot::Kernel {
        kernel: artifact("vmlinuz"),
        initrd: artifact("initrd-pxe"),
        cmdline: "console=ttyS0,115200n8 corral.debug_shell=ttyS1".into(),
    });
    let port = free_port().expect("port");
    let web = free_port().expect("port");
    let tls = free_port().expect("port");
    cfg.ssh_port = Some(port);
    cfg.forwards = vec![(web, 8080), (tls, 2376)];
    cfg.drives.push(Drive {
        file: iso,
        kind: "cdrom",
    });
    let started = Instant::now();
    let mut vm = Vm::start("user-engine", &cfg, &dir, Vec::new()).expect("qemu starts");
    let ssh = Ssh {
        port,
        user: "corral".into(),
        key: key.private.clone(),
    };
    ssh.wait_ready(BOOT).expect("sshd accepts the seed's key");
    let ready = vm
        .wait_for("user engine: ready", BOOT)
        .expect("the user engine answers");
    eprintln!(
        "user engine ready at {ready:.1}s (test saw it {:.1}s after QEMU start)",
        started.elapsed().as_secs_f64()
    );

    // A missing engine image is a clear error, and the built-in engine runs instead.
    vm.wait_for(
        "corral.docker.engine: the image corral/no-such-engine:1 is not in the system engine",
        CMD,
    )
    .expect("the missing engine image is named");

    // The socket: group docker, mode 0660, and the corral user (in group docker) uses it.
    let sock = ssh
        .check("stat -L -c '%a %G' /var/run/docker.sock", CMD)
        .expect("stat");
    assert_eq!(sock.trim(), "660 docker");
    let info = ssh
        .check(
            "docker info --format '{{.ServerVersion}} {{.Driver}} {{.DockerRootDir}} {{.LoggingDriver}}'",
            CMD,
        )
        .expect("docker info as corral");
    let user = corral_harness::locked_upstream("unstable", "docker.io");
    assert!(
        info.starts_with(&user),
        "the newest engine by default: {info}"
    );
    assert!(
        info.contains("overlay2 /var/lib/docker json-file"),
        "{info}"
    );
    // daemon.json from corral.docker: the bridge's address and the log options.
    let bridge = ssh.check("ip -4 addr show docker0", CMD).expect("docker0");
    assert!(bridge.contains("10.88.0.1/16"), "{bridge}");

    // Preload: the gzipped archive from the seed was loaded once and marked done.
    vm.wait_for("user engine: preloaded", CMD)
        .expect("preloaded");
    let marker = ssh
        .check("sudo ls -a /var/lib/corral/preload/docker", CMD)
        .expect("preload folder");
    assert!(marker.contains(".busybox.tar.gz.done"), "{marker}");
    let images = ssh
        .check("docker images --format '{{.Repository}}:{{.Tag}}'", CMD)
        .expect("images");
    assert!(images.contains(BUSYBOX), "preloaded: {images}");

    // `docker load` of an archive from the host, then a workload runs and is removed.
    ssh.check(&format!("docker rmi {BUSYBOX}"), CMD)
        .expect("remove the preloaded copy");
    let loaded = ssh
        .run_with_input("docker load", Some(&archive), CMD)
        .expect("docker load");
    assert_eq!(loaded.0, 0, "{loaded:?}");
    assert!(loaded.1.contains(BUSYBOX), "{loaded:?}");
    let hello = ssh
        .check(
            &format!("docker run --rm {BUSYBOX} echo hello from a workload"),
            CMD,
        )
        .expect("docker run --rm");
    assert!(hello.contains("hello from a workload"), "{hello}");
    // Figures for docs/benchmarks.md (printed, not asserted; `make bench` owns timing).
    eprintln!(
        "first docker run answered {:.1}s after QEMU start (the image loaded over ssh first)",
        started.elapsed().as_secs_f64()
    );
    let rss = ssh
        .check("ps -C dockerd,containerd -o rss=,args= | cut -c1-90", CMD)
        .expect("ps");
    eprintln!("engines' resident memory (KiB):\n{rss}");
    let log = ssh
        .check(
            &format!("docker run --name logged {BUSYBOX} true && docker inspect --format '{{{{.HostConfig.LogConfig.Config}}}}' logged"),
            CMD,
        )
        .expect("log config");
    assert!(log.contains("max-size:5m"), "{log}");
    check_confinement(&ssh);
    check_compose_and_buildx(&ssh);

    // A published port, reached from the build host through QEMU's hostfwd: NAT and
    // docker-proxy on the engine's own bridge.
    ssh.check(
        &format!(
            "docker run -d --name web -p 8080:80 {BUSYBOX} sh -c \
             'mkdir -p /www && echo served by a corral workload > /www/index.html && exec httpd -f -p 80 -h /www'"
        ),
        CMD,
    )
    .expect("docker run -d -p 8080:80");
    let end = Instant::now() + CMD;
    let page = loop {
        match http_get(web) {
            Ok(p) if p.contains("served by a corral workload") => break p,
            other if Instant::now() > end => panic!("no page on 127.0.0.1:{web}: {other:?}"),
            _ => std::thread::sleep(Duration::from_secs(1)),
        }
    };
    assert!(
        page.starts_with("HTTP/1.") && page.contains(" 200 OK"),
        "{page}"
    );

    // Each engine sees its own containers only.
    let user_ps = ssh
        .check("docker ps -a --format '{{.Names}}'", CMD)
        .expect("docker ps");
    assert!(user_ps.lines().any(|l| l == "web"), "{user_ps}");
    for system in ["console", "network", "syslog", "docker"] {
        assert!(
            !user_ps.lines().any(|l| l == system),
            "{system} in: {user_ps}"
        );
    }
    let system_ps = ssh
        .check("sudo system-docker ps -a --format '{{.Names}}'", CMD)
        .expect("system-docker ps");
    for system in ["console", "network", "docker"] {
        assert!(
            system_ps.lines().any(|l| l == system),
            "{system} missing: {system_ps}"
        );
    }
    assert!(!system_ps.lines().any(|l| l == "web"), "{system_ps}");

    // TLS on 2376: inside with the corral user's client files, and from the build host
    // with a copy of them; without a client certificate the engine refuses.
    let version = ssh
        .check(
            "docker --tlsverify -H tcp://127.0.0.1:2376 version --format '{{.Server.Version}}'",
            CMD,
        )
        .expect("docker over TLS as corral");
    assert!(
        version
            .trim()
            .starts_with(&corral_harness::locked_upstream("unstable", "docker.io")),
        "{version}"
    );
    let certs = client_files(&ssh, &dir.join("client-tls"));
    let host = host_docker(
        &certs,
        tls,
        &["--tlsverify", "ps", "--format", "{{.Names}}"],
    );
    let host_ps = String::from_utf8_lossy(&host.stdout);
    assert!(
        host.status.success() && host_ps.lines().any(|l| l == "web"),
        "{host_ps} {}",
        String::from_utf8_lossy(&host.stderr)
    );
    let anonymous = host_docker(&dir.join("no-such-certs"), tls, &["--tls", "ps"]);
    assert!(
        !anonymous.status.success(),
        "no client certificate, no entry"
    );

    // Restarting the console (where this ssh session lives) leaves workloads running.
    let _ = ssh.run(
        "sudo setsid sh -c 'sleep 1; system-docker restart -t 2 console' >/dev/null 2>&1 < /dev/null &",
        CMD,
    );
    std::thread::sleep(Duration::from_secs(5));
    ssh.wait_ready(BOOT).expect("ssh after the console restart");
    let restarted = ssh
        .eventually(
            "sudo system-docker inspect --format '{{.State.StartedAt}}' console",
            CMD,
            CMD,
        )
        .expect("the console restarted");
    assert!(!restarted.trim().is_empty());
    let still = ssh
        .check("docker ps --format '{{.Names}} {{.Status}}'", CMD)
        .expect("docker ps after");
    assert!(
        still.lines().any(|l| l.starts_with("web Up")),
        "web stopped with the console: {still}"
    );
    assert!(http_get(web)
        .expect("page after the console restart")
        .contains("served by a corral workload"));

    check_tls_generate(&ssh, &certs, tls, &dir);

    // Poweroff: the engine stops its workload itself (its way down, not `docker stop`,
    // which would keep an `unless-stopped` one down at the next boot: tests/disk.rs)
    // within its time, then the console, then the system engine.
    let _ = ssh.run("sudo poweroff", CMD);
    vm.wait_exit(BOOT).expect("QEMU exits at poweroff");
    let console = vm.console.text();
    assert!(
        console.contains("service docker: exited in")
            && !console.contains("service docker: still running"),
        "the engine went down its own way:\n{console}"
    );
    assert!(
        !console.contains("containers stopped in"),
        "no workload stopped through the API (live-restore is off):\n{console}"
    );
}

/// No AppArmor in this kernel boot either (no `apparmor=0` here: the engine never sees
/// it, securityfs being unmounted); Docker's seccomp profile and crun confine
/// containers, which start (docs/user-engine.md, "Confinement").
fn check_confinement(ssh: &Ssh) {
    let info = ssh
        .check(
            "docker info --format '{{.DefaultRuntime}}|{{json .SecurityOptions}}|{{range $k, $v := .Runtimes}}{{$k}} {{end}}'",
            CMD,
        )
        .expect("docker info");
    let fields: Vec<&str> = info.trim().split('|').collect();
    assert_eq!(fields[0], "crun", "{info}");
    assert!(fields[1].contains("name=seccomp"), "{info}");
    assert!(!fields[1].contains("apparmor"), "{info}");
    assert!(
        fields[2].contains("crun") && fields[2].contains("runc"),
        "{info}"
    );
    let mounted = ssh
        .check("grep -c ' securityfs ' /proc/1/mounts || true", CMD)
        .expect("mounts");
    assert_eq!(mounted.trim(), "0", "securityfs stays unmounted");
    let runc = ssh
        .check(
            &format!("docker run --rm --runtime runc {BUSYBOX} echo runc too"),
            CMD,
        )
        .expect("runc is there for whoever asks");
    assert!(runc.contains("runc too"), "{runc}");
}

/// `docker compose` (v2) and `docker buildx` as the console's user: two services that
/// reach each other by name, then `down` removes them and their network; a build FROM a
/// loaded image with no network to pull from.
fn check_compose_and_buildx(ssh: &Ssh) {
    let compose = format!(
        "services:\n\
         \x20 server:\n\
         \x20   image: {BUSYBOX}\n\
         \x20   command: [sh, -c, 'mkdir -p /www && echo answered by name > /www/index.html && exec httpd -f -p 80 -h /www']\n\
         \x20 client:\n\
         \x20   image: {BUSYBOX}\n\
         \x20   depends_on: [server]\n\
         \x20   command: [sh, -c, 'for i in $$(seq 60); do wget -q -O- http://server/ && exit 0; sleep 1; done; exit 1']\n"
    );
    ssh.check(
        &format!(
            "mkdir -p pair && printf '%s' {} > pair/compose.yaml",
            corral_harness::bench::sh_quote(&compose)
        ),
        CMD,
    )
    .expect("compose file");
    ssh.check("cd pair && docker compose up -d 2>&1", CMD)
        .expect("docker compose up -d");
    let code = ssh
        .check("docker wait pair-client-1", CMD)
        .expect("the client finishes");
    let said = ssh.check("docker logs pair-client-1", CMD).expect("logs");
    assert_eq!(code.trim(), "0", "the client reached the server: {said}");
    assert!(said.contains("answered by name"), "{said}");
    ssh.check("cd pair && docker compose down 2>&1", CMD)
        .expect("docker compose down");
    let left = ssh
        .check(
            "docker ps -aq --filter label=com.docker.compose.project=pair; docker network ls -q --filter name=pair_default",
            CMD,
        )
        .expect("what is left");
    assert_eq!(
        left.trim(),
        "",
        "down removes the containers and the network"
    );

    ssh.check(
        &format!(
            "mkdir -p built && printf 'FROM {BUSYBOX}\\nRUN echo built here > /built\\n' > built/Dockerfile"
        ),
        CMD,
    )
    .expect("Dockerfile");
    let (code, out) = ssh
        .run(
            "docker buildx build --pull=false -t corral/built:1 built 2>&1",
            Duration::from_secs(300),
        )
        .expect("docker buildx build");
    assert_eq!(code, 0, "{out}");
    let built = ssh
        .check(
            "docker run --rm corral/built:1 cat /built && docker rmi corral/built:1",
            CMD,
        )
        .expect("the built image runs");
    assert!(built.contains("built here"), "{built}");
}

/// `corral tls generate`: a new CA whose server certificate carries the names given;
/// once the engine restarts, the old client files are refused and the new ones (the
/// corral user's copy) let in, by name as well as by address. Leaves `web` running.
fn check_tls_generate(ssh: &Ssh, old_certs: &Path, tls: u16, dir: &Path) {
    let out = ssh
        .check(
            "sudo corral tls generate --hostname engine.example --format json",
            CMD,
        )
        .expect("tls generate");
    let made: corral_api::protocol::Tls =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(made.dir, "/var/lib/corral/tls");
    assert!(made.enabled, "{made:?}");
    for name in ["localhost", "127.0.0.1", "engine.example"] {
        assert!(made.names.iter().any(|n| n == name), "{name}: {made:?}");
    }
    assert_eq!(
        made.client,
        [
            "/home/corral/.docker/ca.pem",
            "/home/corral/.docker/cert.pem",
            "/home/corral/.docker/key.pem"
        ]
    );
    let (code, text) = ssh
        .run("sudo corral tls generate --hostname 'not a name' 2>&1", CMD)
        .expect("a bad name");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not a host name"), "{text}");
    let clean_exits = || {
        let (_, count) = ssh
            .run(
                "sudo corral service logs docker | grep -c 'Daemon shutdown complete'",
                CMD,
            )
            .expect("the engine's logs");
        count.trim().parse::<u32>().unwrap_or(0)
    };
    let before = clean_exits();
    ssh.check("sudo corral service restart docker", CMD)
        .expect("restart the engine");
    // dockerd stopped `web` itself (its shell ignores SIGTERM: 10 s) and finished its
    // way down within the service's stop time, rather than die by SIGKILL halfway and
    // leave web's runtime state behind (docs/user-engine.md, "Shutdown").
    assert_eq!(
        clean_exits(),
        before + 1,
        "the engine's restart was a clean dockerd shutdown"
    );
    // engine.example and other.example both lead to this machine; only the first is in
    // the certificate.
    ssh.check(
        "echo '127.0.0.1 engine.example other.example' | sudo tee -a /etc/hosts",
        CMD,
    )
    .expect("hosts");
    let version = ssh
        .eventually(
            "docker --tlsverify -H tcp://engine.example:2376 version --format '{{.Server.Version}}'",
            CMD,
            CMD,
        )
        .expect("the new certificates, by the name given");
    assert!(
        version
            .trim()
            .starts_with(&corral_harness::locked_upstream("unstable", "docker.io")),
        "{version}"
    );
    let (code, text) = ssh
        .run(
            "docker --tlsverify -H tcp://other.example:2376 version 2>&1",
            CMD,
        )
        .expect("a name not in the certificate");
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("not other.example"),
        "refused for its name: {text}"
    );
    let old = host_docker(old_certs, tls, &["--tlsverify", "ps"]);
    assert!(
        !old.status.success(),
        "the old CA's client files are refused: {}",
        String::from_utf8_lossy(&old.stdout)
    );
    let renewed = client_files(ssh, &dir.join("client-tls-renewed"));
    // The old client certificate, trusting the new server: the engine itself refuses it
    // (it checks clients against the new CA only).
    let mixed = dir.join("client-tls-mixed");
    std::fs::create_dir_all(&mixed).expect("mixed dir");
    std::fs::copy(renewed.join("ca.pem"), mixed.join("ca.pem")).expect("new ca");
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(old_certs.join(f), mixed.join(f)).expect("old client file");
    }
    let stale = host_docker(&mixed, tls, &["--tlsverify", "ps"]);
    let said = String::from_utf8_lossy(&stale.stderr);
    assert!(
        !stale.status.success() && said.contains("certificate"),
        "the engine refuses the old client certificate: {said}"
    );
    let new = host_docker(&renewed, tls, &["--tlsverify", "ps"]);
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    // The engine's restart stopped the workload; poweroff's check wants it running.
    ssh.check("docker start web", CMD).expect("web again");
}

/// Copies the corral user's TLS client files from the guest into `dest`; returns it.
fn client_files(ssh: &Ssh, dest: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dest).expect("certs dir");
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        let text = ssh
            .check(&format!("cat ~/.docker/{f}"), CMD)
            .expect("client file");
        std::fs::write(dest.join(f), text).expect("write client file");
    }
    dest.to_path_buf()
}

/// The build host's docker CLI against the guest's engine on forwarded port `tls`, with
/// the client files in `certs`.
fn host_docker(certs: &Path, tls: u16, args: &[&str]) -> std::process::Output {
    std::process::Command::new("docker")
        .env("DOCKER_CERT_PATH", certs)
        .args(["-H", &format!("tcp://127.0.0.1:{tls}")])
        .args(args)
        .output()
        .expect("the host's docker CLI runs")
}
