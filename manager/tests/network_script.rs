//! The network service's script, run on the build host with `ip`, `udhcpc` and
//! `hostname` replaced by recorders: the plan the manager hands over in CORRAL_NETWORK
//! turns into the right commands, and CORRAL_DNS into resolv.conf.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn recorder(dir: &Path, name: &str, log: &Path) {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho \"{name} $*\" >> {}\n", log.display()),
    )
    .expect("write recorder");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn the_plan_becomes_dhcp_static_and_plain_links_and_dns_replaces_dhcps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let log = dir.path().join("calls");
    for name in ["ip", "udhcpc", "hostname"] {
        recorder(&bin, name, &log);
    }
    let resolv = dir.path().join("resolv.conf");
    // The script as shipped, with the host's resolv.conf pointed into the test folder
    // and the final wait for udhcpc's children cut short.
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/network/network.sh"),
    )
    .expect("read network.sh")
    .replace("/etc/resolv.conf", &resolv.display().to_string())
    .replace("\nwait\n", "\n");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env(
            "CORRAL_NETWORK",
            "eth0 dhcp mtu=9000;eth1 static addr=10.0.1.5/24,10.0.1.6/24 gw=10.0.1.1;eth2 none",
        )
        .env("CORRAL_DNS", "1.1.1.1 9.9.9.9")
        .env("CORRAL_DNS_SEARCH", "corp.example")
        .output()
        .expect("run network.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // udhcpc runs in the background; give its recorder a moment.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let calls = std::fs::read_to_string(&log).expect("calls");
    let calls: Vec<&str> = calls
        .lines()
        .filter(|l| !l.starts_with("hostname"))
        .collect();
    for expected in [
        "ip link set lo up",
        "ip link set eth0 mtu 9000",
        "ip link set eth0 up",
        "udhcpc -f -i eth0 -t 10 -T 2 -A 5 -x hostname: -s /usr/libexec/corral/udhcpc.script",
        "ip addr flush dev eth1",
        "ip addr add 10.0.1.5/24 dev eth1",
        "ip addr add 10.0.1.6/24 dev eth1",
        "ip -4 route replace default via 10.0.1.1 dev eth1",
        "ip link set eth2 up",
    ] {
        assert!(calls.contains(&expected), "{expected:?} in {calls:#?}");
    }
    assert!(!calls
        .iter()
        .any(|c| c.contains("udhcpc -f -i eth1") || c.contains("udhcpc -f -i eth2")));
    assert_eq!(
        std::fs::read_to_string(&resolv).expect("resolv.conf"),
        "search corp.example\nnameserver 1.1.1.1\nnameserver 9.9.9.9\n"
    );
}
