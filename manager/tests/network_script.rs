//! The network service's script, run on the build host with `ip` (the script calls
//! `/usr/bin/ip` by path, which the test points at its recorder), `udhcpc`, `udhcpc6`
//! and `hostname` replaced by recorders: the plan the manager hands over in
//! CORRAL_NETWORK turns into the right commands in the right order, with the configured
//! commands around them, and CORRAL_DNS into resolv.conf.

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
    for name in ["ip", "udhcpc", "udhcpc6", "hostname"] {
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
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
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
            format!(
                "br0 bridge;bond0 bond bond.miimon=100 bond.mode=4;eth3 slave master=bond0;\
                 bond0.100 vlan link=bond0 id=100;eth5 port master=br0 post={};\
                 eth0 dhcp mtu=9000 post={};\
                 eth1 static addr=10.0.1.5/24,10.0.1.6/24,fd00::5/64 gw=10.0.1.1 gw6=fd00::1 pre={};\
                 eth2 none;bond0 static addr=10.0.3.2/24;bond0.100 none;br0 none",
                b64("ip link set $iface alias port"),
                b64("echo after-the-lease"),
                b64("ip link set $iface alias \"before it\"; false"),
            ),
        )
        .env("CORRAL_PRE_CMDS", b64("ip link set lo alias pre"))
        .env(
            "CORRAL_POST_CMDS",
            format!("{} {}", b64("ip link set lo alias post"), b64("exit 3")),
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
        "udhcpc6 -f -i eth0 -t 3 -T 2 -A 60 -O dns -O search -s /usr/libexec/corral/udhcpc6.script",
        "ip -4 addr flush dev eth1",
        "ip -6 addr flush dev eth1 scope global",
        "ip addr add 10.0.1.5/24 dev eth1",
        "ip addr add 10.0.1.6/24 dev eth1",
        "ip addr add fd00::5/64 dev eth1",
        "ip -4 route replace default via 10.0.1.1 dev eth1",
        "ip -6 route replace default via fd00::1 dev eth1",
        "ip link set eth5 master br0",
        "ip link set br0 up",
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
        at("ip link set lo alias pre"),
        at("ip link add name br0 type bridge"),
        at("ip link add bond0 type bond miimon 100 mode 4"),
        at("ip link set eth3 down"),
        at("ip addr flush dev eth3"),
        at("ip link set eth3 master bond0"),
        at("ip link set eth3 up"),
        at("ip link add link bond0 name bond0.100 type vlan id 100"),
        at("ip link set eth5 master br0"),
        at("ip link set eth5 alias port"),
        at("ip link set eth0 up"),
        at("ip link set eth1 alias before it"),
        at("ip -4 addr flush dev eth1"),
        at("ip link set br0 up"),
        at("ip link set lo alias post"),
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
    // A DHCP interface's post_up waits for its lease (udhcpc.script runs it); a failing
    // command is reported and the rest go on.
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!said.contains("after-the-lease"), "{said}");
    for says in [
        "network: command failed (exit 1) for eth1: ip link set $iface alias \"before it\"; false",
        "network: command failed (exit 3): exit 3",
    ] {
        assert!(said.contains(says), "{says}: {said}");
    }
    assert_eq!(
        std::fs::read_to_string(&resolv).expect("resolv.conf"),
        "search corp.example\nnameserver 1.1.1.1\nnameserver 9.9.9.9\n"
    );
}

/// The DHCP hooks: each lease's servers kept, /etc/resolv.conf made from all of them
/// (DHCPv4's first, each once), the DHCPv6 address added as a /128, and an interface's
/// post_up run after its first lease only.
#[test]
fn leases_make_resolv_conf_together_and_post_up_runs_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let log = dir.path().join("calls");
    recorder(&bin, "ip", &log);
    let resolv = dir.path().join("resolv.conf");
    let run = dir.path().join("run");
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/network");
    let shared = std::fs::read_to_string(images.join("resolv.sh"))
        .expect("resolv.sh")
        .replace("/etc/resolv.conf", &resolv.display().to_string())
        .replace("/run/", &format!("{}/", run.display()))
        .replace("/usr/bin/ip", &bin.join("ip").display().to_string());
    let shared_path = dir.path().join("resolv.sh");
    std::fs::write(&shared_path, shared).expect("write resolv.sh");
    let hook = |name: &str, env: &[(&str, &str)]| {
        let script = std::fs::read_to_string(images.join(name))
            .expect("hook")
            .replace(
                "/usr/libexec/corral/resolv.sh",
                &shared_path.display().to_string(),
            );
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).arg(name).arg("bound");
        cmd.env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run the hook");
        assert!(out.status.success(), "{name}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let post_up = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("echo post-up-ran-for-$iface")
    };
    let v4 = [
        ("interface", "eth0"),
        ("ip", "10.0.2.15"),
        ("mask", "24"),
        ("router", "10.0.2.2"),
        ("dns", "10.0.2.3 9.9.9.9"),
        ("domain", "corral.test"),
        ("lease", "86400"),
        ("CORRAL_POST_UP", post_up.as_str()),
    ];
    let first = hook("udhcpc.script", &v4);
    assert!(first.contains("post-up-ran-for-eth0"), "{first}");
    let v6 = [
        ("interface", "eth0"),
        ("ipv6", "2001:db8::15"),
        ("lease", "3600"),
        ("dns", "2001:db8::53 9.9.9.9"),
        ("search", "v6.corral.test"),
    ];
    hook("udhcpc6.script", &v6);
    assert_eq!(
        std::fs::read_to_string(&resolv).expect("resolv.conf"),
        "search corral.test v6.corral.test\nnameserver 10.0.2.3\nnameserver 9.9.9.9\nnameserver 2001:db8::53\n"
    );
    let calls = std::fs::read_to_string(&log).expect("calls");
    assert!(
        calls.contains(
            "ip -6 addr replace 2001:db8::15/128 dev eth0 valid_lft 3600 preferred_lft 3600"
        ),
        "{calls}"
    );
    let renewed = hook("udhcpc.script", &v4);
    assert!(!renewed.contains("post-up-ran"), "post_up once: {renewed}");
    // corral.network.dns set: the leases leave resolv.conf alone.
    std::fs::write(&resolv, "nameserver 1.1.1.1\n").expect("w");
    let mut with_dns = v4.to_vec();
    with_dns.push(("CORRAL_DNS", "1.1.1.1"));
    hook("udhcpc.script", &with_dns);
    assert_eq!(
        std::fs::read_to_string(&resolv).expect("resolv.conf"),
        "nameserver 1.1.1.1\n"
    );
}
