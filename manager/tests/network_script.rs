//! The network service's script, run on the build host with `ip` (the script calls
//! `/usr/bin/ip` by path, which the test points at its recorder), `udhcpc` and
//! `hostname` replaced by recorders: the plan the manager hands over in CORRAL_NETWORK
//! turns into the right commands in the right order, and CORRAL_DNS into resolv.conf.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// A command that logs its arguments and succeeds; `ip link show` fails (no such link
/// yet), so that bonds and VLANs are made.
fn recorder(dir: &Path, name: &str, log: &Path) {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"{name} $*\" >> {}\ncase \"$*\" in \"link show\"*) exit 1;; esac\n",
            log.display()
        ),
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
    .replace("/usr/bin/ip", &bin.join("ip").display().to_string())
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
            "bond0 bond bond.miimon=100 bond.mode=4;eth3 slave master=bond0;\
             bond0.100 vlan link=bond0 id=100;\
             eth0 dhcp mtu=9000;eth1 static addr=10.0.1.5/24,10.0.1.6/24 gw=10.0.1.1;eth2 none;\
             bond0 static addr=10.0.3.2/24;bond0.100 none",
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
        "ip addr add 10.0.3.2/24 dev bond0",
        "ip link set bond0.100 up",
    ] {
        assert!(calls.contains(&expected), "{expected:?} in {calls:#?}");
    }
    // The bond made with its options, its member down and emptied before it joins, the
    // VLAN made on the bond: in that order, and before any address.
    let at = |call: &str| {
        calls
            .iter()
            .position(|c| *c == call)
            .unwrap_or_else(|| panic!("{call:?} in {calls:#?}"))
    };
    let order = [
        at("ip link add bond0 type bond miimon 100 mode 4"),
        at("ip link set eth3 down"),
        at("ip addr flush dev eth3"),
        at("ip link set eth3 master bond0"),
        at("ip link set eth3 up"),
        at("ip link add link bond0 name bond0.100 type vlan id 100"),
        at("ip link set eth0 up"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{calls:#?}");
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("-i bond0.100") || c.contains("-i eth3")),
        "no DHCP on a member or an unconfigured VLAN"
    );
    assert!(!calls
        .iter()
        .any(|c| c.contains("udhcpc -f -i eth1") || c.contains("udhcpc -f -i eth2")));
    assert_eq!(
        std::fs::read_to_string(&resolv).expect("resolv.conf"),
        "search corp.example\nnameserver 1.1.1.1\nnameserver 9.9.9.9\n"
    );
}
