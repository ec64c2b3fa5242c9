//! End-to-end: consoles. One disk machine (`corral.img`, a state partition), two boots:
//! `corral console switch debian --from URL` loads dist/console-debian.tar served on the
//! host's loopback and runs the Debian console; apt installs a package from a small
//! repository served the same way; after a reboot the Debian console runs again with
//! the package still installed. A console image that does not stay up is switched back,
//! and `console switch default` brings the default console back.

use corral_harness::files::FileServer;
use corral_harness::imds::{FakeImds, Instance};
use corral_harness::{artifact, free_port, log_dir, Boot, KeyPair, Ssh, Vm, VmConfig};
use std::path::Path;
use std::time::Duration;

#[path = "common/apt.rs"]
mod apt;

const BOOT: Duration = Duration::from_secs(300);
const CMD: Duration = Duration::from_secs(120);
/// Loading the console (a 280 MB archive over QEMU's guestfwd, `docker load` under TCG,
/// its volumes filled) and the console's restart.
const SWITCH: Duration = Duration::from_secs(900);
/// Where the guest reaches the file server.
const SERVED: &str = "169.254.169.253:8080";

fn machine(disk: &Path, imds: &FakeImds, served: &FileServer) -> (VmConfig, u16) {
    let mut cfg = VmConfig::new(Boot::Nvme(disk.to_path_buf()));
    let port = free_port().expect("port");
    cfg.ssh_port = Some(port);
    cfg.metadata_port = Some(imds.port);
    cfg.guest_forwards = vec![(SERVED.into(), served.port)];
    cfg.smbios_vendor = Some("Amazon EC2".into());
    (cfg, port)
}

/// `corral console list --format json`: (name, current, configured).
fn consoles(ssh: &Ssh) -> Vec<(String, bool, bool)> {
    let out = ssh
        .check("sudo corral console list --format json", CMD)
        .expect("console list");
    let list: Vec<corral_api::protocol::Console> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    list.into_iter()
        .map(|c| (c.name, c.current, c.configured))
        .collect()
}

/// Runs a switch (the session ends as the console restarts) and waits until `check`
/// passes in the console that comes up.
fn switch(ssh: &Ssh, command: &str, check: &str) -> String {
    let (code, out) = ssh.run(command, SWITCH).unwrap_or((-1, String::new()));
    eprintln!("consoles: `{command}` (exit {code}; the session may end with the console):\n{out}");
    ssh.eventually(check, SWITCH, CMD)
        .unwrap_or_else(|e| panic!("after `{command}`, `{check}`: {e:?}"))
}

#[test]
fn the_debian_console_loads_runs_apt_and_keeps_its_packages_across_a_reboot() {
    let dir = log_dir("consoles");
    std::fs::create_dir_all(&dir).expect("log dir");
    let disk = dir.join("disk.img");
    corral_harness::disk_from_image(&artifact("corral.img"), &disk, 3 << 30).expect("disk");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-consoles").expect("key pair");
    apt::flat_repository(&dir);
    let console_tar = dir.join("served/console-debian.tar");
    let _ = std::fs::remove_file(&console_tar);
    std::os::unix::fs::symlink(artifact("console-debian.tar"), &console_tar).expect("link");
    let served = FileServer::start(&dir.join("served"), None).expect("file server");
    let imds = FakeImds::start(Instance {
        instance_id: "i-0c0501e000000000d".into(),
        local_hostname: "consoles.ec2.internal".into(),
        region: "eu-west-1".into(),
        public_keys: vec![("e2e".into(), key.public.clone())],
        user_data: None,
        require_token: true,
        v1_only: false,
    })
    .expect("fake IMDS");
    let (cfg, port) = machine(&disk, &imds, &served);
    let ssh = Ssh {
        port,
        user: "corral".into(),
        key: key.private.clone(),
    };
    let mut vm = Vm::start("consoles", &cfg, &dir.join("first"), Vec::new()).expect("QEMU");
    ssh.wait_ready(BOOT).expect("sshd on the default console");
    assert_eq!(
        consoles(&ssh),
        [("default".to_string(), true, true)],
        "the default console alone"
    );
    // The Debian console, loaded from the host.
    let debian = switch(
        &ssh,
        &format!(
            "sudo corral console switch debian --from http://{SERVED}/console-debian.tar 2>&1"
        ),
        "cat /etc/debian_version && dpkg-query -W -f '${Status}' apt",
    );
    assert!(debian.contains("install ok installed"), "{debian}");
    let list = consoles(&ssh);
    assert!(
        list.contains(&("debian".to_string(), true, true)),
        "debian runs and is configured: {list:?}"
    );
    // apt, from a repository on the host's loopback (Debian's own is out of reach).
    let installed = apt::install_hello(&ssh, SERVED, Duration::from_secs(600));
    assert!(installed.ends_with("hello from apt\n"), "{installed}");
    // The same sshd, the same keys, corral's tools.
    ssh.check(
        "sudo -n true && docker --version && sudo system-docker ps",
        CMD,
    )
    .expect("sudo and both engines' CLIs in the Debian console");
    let _ = ssh.run("sudo corral reboot", CMD);
    vm.wait_exit(BOOT).expect("QEMU exits at the reboot");

    // Second boot: the Debian console again, the package still there.
    let mut vm = Vm::start("consoles-again", &cfg, &dir.join("second"), Vec::new()).expect("QEMU");
    ssh.wait_ready(BOOT).expect("sshd after the reboot");
    assert_eq!(
        ssh.check(
            "corral-hello && dpkg-query -W -f '${Status}' corral-hello",
            CMD
        )
        .expect("the package kept"),
        "hello from apt\ninstall ok installed"
    );
    // A console that does not stay up (an image without console-init) is switched back.
    // The switch answers first, then the manager replaces the console and watches it:
    // the way back is over when it says so.
    let base = format!("corral/base:{}", env!("CARGO_PKG_VERSION"));
    let from = vm.console.mark();
    let (code, out) = ssh
        .run(&format!("sudo corral console switch {base} 2>&1"), SWITCH)
        .unwrap_or((-1, String::new()));
    eprintln!("consoles: switch to {base} (exit {code}): {out}");
    assert!(
        out.contains(&format!("switching to console {base}")),
        "{out}"
    );
    let said = vm
        .console
        .wait(from, SWITCH, |text| {
            text.contains("console debian: running again")
                .then(|| text.to_string())
        })
        .expect("the manager puts the Debian console back");
    assert!(
        said.contains("it exited (code 0)") && said.contains("switching back to debian"),
        "the manager says why on the console: {said}"
    );
    let back = ssh
        .eventually(
            "test -f /etc/debian_version && command -v apt-get",
            SWITCH,
            CMD,
        )
        .expect("the Debian console back");
    assert!(back.contains("apt-get"), "{back}");
    // And the default console back.
    switch(
        &ssh,
        "sudo corral console switch default 2>&1",
        "! command -v apt-get && sudo corral console list --format json | grep -q default",
    );
    assert!(
        consoles(&ssh).contains(&("default".to_string(), true, true)),
        "the default console runs and is configured"
    );
    let requests = served.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /apt/") && r.contains("corral-hello_1.0_all.deb")),
        "{requests:?}"
    );
    let _ = ssh.run("sudo corral poweroff", CMD);
    vm.wait_exit(Duration::from_secs(120))
        .expect("QEMU exits after poweroff");
}
