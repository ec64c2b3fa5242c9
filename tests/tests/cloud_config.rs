//! End-to-end: cloud-config from each kind of source, in QEMU. One boot per scenario:
//! a NoCloud `cidata` ISO, a fake EC2 metadata service (IMDSv2) reached through
//! `guestfwd`, a broken user-data that must not stop the machine, and a console that
//! cannot start, where the rescue console lets the user in.

use corral_harness::imds::{FakeImds, Instance};
use corral_harness::{
    artifact, free_port, log_dir, nocloud_iso, test_image, Boot, Drive, KeyPair, Ssh, Vm, VmConfig,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(240);
const CMD: Duration = Duration::from_secs(60);

/// The kernel and initrd with the debug shell on ttyS1 and `extra` options.
fn kernel_boot(extra: &str) -> Boot {
    Boot::Kernel {
        kernel: artifact("vmlinuz"),
        initrd: artifact("initrd-pxe"),
        cmdline: format!("console=ttyS0,115200n8 corral.debug_shell=ttyS1 {extra}"),
    }
}

/// A kernel boot with `extra` options, an ssh forward and the NoCloud `seed` as a CD;
/// returns the configuration and the forwarded port.
fn seeded(extra: &str, seed: PathBuf) -> (VmConfig, u16) {
    let mut cfg = VmConfig::new(kernel_boot(extra));
    let port = free_port().expect("port");
    cfg.ssh_port = Some(port);
    cfg.drives.push(Drive {
        file: seed,
        kind: "cdrom",
    });
    (cfg, port)
}

fn ssh_as_corral(port: u16, key: &Path) -> Ssh {
    Ssh {
        port,
        user: "corral".into(),
        key: key.to_path_buf(),
    }
}

#[test]
fn a_nocloud_seed_configures_hostname_keys_files_commands_dns_and_services() {
    let dir = log_dir("nocloud");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-nocloud").expect("key pair");
    let user_data = format!(
        "#cloud-config\n\
         hostname: nocloud-node\n\
         ssh_authorized_keys:\n  - {key}\n\
         write_files:\n\
         \x20 - path: /home/corral/hello.txt\n\
         \x20   owner: corral:corral\n\
         \x20   permissions: \"0640\"\n\
         \x20   content: hello from cidata\n\
         \x20 - path: /var/lib/corral/blob\n\
         \x20   encoding: b64\n\
         \x20   content: aGVsbG8gYjY0\n\
         \x20 - path: /usr/local/bin/net-hook.sh\n\
         \x20   container: network\n\
         \x20   permissions: \"0755\"\n\
         \x20   content: \"#!/bin/bash\\nset -e\\n[[ $# -gt 0 ]] && /usr/bin/ip link set eth3 alias \\\"bash-$1\\\"\\n\"\n\
         \x20 - path: /etc/from-cloud-config\n\
         \x20   container: syslog\n\
         \x20   content: into syslog\n\
         \x20 - path: /etc/docker/daemon.json\n\
         \x20   content: '{{\"labels\": [\"from=write_files\"]}}'\n\
         \x20 - path: /etc/docker/certs.d/reg.corral.test:5000/ca.crt\n\
         \x20   content: a registry's CA\n\
         \x20 - path: /etc/ssl/certs/corral-e2e-ca.pem\n\
         \x20   content: \"a private CA\\n\"\n\
         \x20 - path: /opt/rancher/bin/start.sh\n\
         \x20   permissions: \"0755\"\n\
         \x20   content: \"#!/bin/sh\\necho start.sh >> /run/start-scripts\\n\"\n\
         \x20 - path: /etc/rc.local\n\
         \x20   permissions: \"0755\"\n\
         \x20   content: \"#!/bin/sh\\necho rc.local >> /run/start-scripts\\n\"\n\
         bootcmd:\n  - echo bootcmd > /run/bootcmd-ran\n\
         \x20 - mkdir -p /run/seed /var/lib/corral/preload/docker\n\
         \x20 - mount -o ro $(findfs LABEL=cidata) /run/seed\n\
         \x20 - cp /run/seed/dnsmasq.tar /var/lib/corral/preload/docker/\n\
         \x20 - umount /run/seed\n\
         runcmd:\n  - echo ran >> /run/runcmd-count\n  - echo runcmd > /run/runcmd-ran\n  - [touch, /home/corral/runcmd-argv]\n\
         users:\n  - default\n  - name: alice\n    groups: [docker]\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys: [{key}]\n\
         ssh_pwauth: false\n\
         timezone: Europe/Paris\n\
         ntp:\n  servers: [10.0.2.2]\n\
         rancher:\n\
         \x20 network:\n\
         \x20   pre_cmds: ['ip link set lo alias pre-cmds-ran', /usr/local/bin/net-hook.sh pre]\n\
         \x20   post_cmds: [[ip, link, set, eth4, alias, post-cmds-ran]]\n\
         \x20   interfaces:\n\
         \x20     eth0: {{dhcp: true, post_up: ['ip link set $iface alias dhcp-post-up-$iface']}}\n\
         \x20     eth3: {{bridge: br0}}\n\
         \x20     br0:\n\
         \x20       bridge: true\n\
         \x20       address: 10.0.5.2/24\n\
         \x20       pre_up: ['ip link set $iface alias pre-up-$iface']\n\
         \x20       post_up: ['ip link set $iface mtu 1400']\n\
         \x20     eth5: {{dhcp: true}}\n\
         \x20     eth6: {{dhcp: false}}\n\
         \x20     eth4:\n\
         \x20       dhcp: false\n\
         \x20       addresses: [10.0.14.15/24, 'fd00:14::15/64']\n\
         \x20       gateway_ipv6: 'fd00:14::2'\n\
         \x20     eth9: {{bond: bond0}}\n\
         \x20     'mac=52:54:00:12:34:5f': {{mtu: 5}}\n\
         \x20     eth1: {{bond: bond0}}\n\
         \x20     eth2: {{bond: bond0}}\n\
         \x20     bond0:\n\
         \x20       address: 10.0.3.2/24\n\
         \x20       bond_opts: {{mode: active-backup, miimon: \"100\"}}\n\
         \x20       vlans: \"100:vlan100\"\n\
         \x20     vlan100: {{address: 10.0.4.2/24}}\n\
         \x20   dns:\n\
         \x20     nameservers: [10.0.2.3, 9.9.9.9]\n\
         \x20     search: [corral.test]\n\
         \x20 console: ubuntu\n\
         \x20 state:\n\
         \x20   dev: LABEL=SEEDED_STATE\n\
         \x20   autoformat: [/dev/vda]\n\
         \x20   fstype: auto\n\
         \x20 registry_auths:\n\
         \x20   reg.corral.test:5000: {{username: e2e, password: secret}}\n\
         \x20 sysctl:\n\
         \x20   vm.swappiness: 12\n\
         \x20 environment:\n\
         \x20   CORRAL_E2E: yes-env\n\
         \x20 services:\n\
         \x20   hello:\n\
         \x20     image: corral/base:{version}\n\
         \x20     command: [sleep, '3600']\n\
         \x20     restart: always\n\
         corral:\n\
         \x20 sysctl:\n\
         \x20   vm.swappiness: 13\n",
        key = key.public,
        version = env!("CARGO_PKG_VERSION"),
    );
    // A DHCPv6 server's image, which bootcmd puts in the user engine's preload folder.
    std::fs::create_dir_all(dir.join("cidata")).expect("seed dir");
    std::fs::copy(test_image("dnsmasq"), dir.join("cidata/dnsmasq.tar")).expect("dnsmasq image");
    let seed = nocloud_iso(
        &dir,
        user_data.as_bytes(),
        "instance-id: iid-e2e-01\nlocal-hostname: meta-name\n",
    )
    .expect("cidata ISO");
    let (mut cfg, port) = seeded("", seed);
    // eth1 and eth2 for a bond with a VLAN on it, eth3 a bridge's port, eth4 static
    // IPv4 and IPv6.
    cfg.extra_nics = 4;
    // eth5 and eth6 on one link of their own: a DHCPv6 server on eth6 serves eth5.
    cfg.linked_pair = true;
    // A blank disk that the seed's `rancher.state` makes the state partition.
    let blank = dir.join("state.img");
    let _ = std::fs::remove_file(&blank);
    std::fs::File::create(&blank)
        .and_then(|f| f.set_len(2 << 30))
        .expect("blank disk");
    cfg.drives.push(Drive {
        file: blank,
        kind: "virtio",
    });
    let mut vm = Vm::start("nocloud", &cfg, &dir, Vec::new()).expect("start QEMU");
    // The only key is the one in the seed: ssh working proves it arrived.
    let ssh = ssh_as_corral(port, &key.private);
    ssh.wait_ready(BOOT).expect("sshd accepts the seed's key");
    assert_eq!(
        ssh.check("hostname", CMD).expect("hostname").trim(),
        "nocloud-node"
    );
    assert_eq!(
        ssh.check("cat ~/hello.txt; echo; stat -c '%a %U' ~/hello.txt", CMD)
            .expect("write_files"),
        "hello from cidata\n640 corral\n"
    );
    let resolv = ssh.check("cat /etc/resolv.conf", CMD).expect("resolv.conf");
    assert!(
        resolv.contains("nameserver 9.9.9.9") && resolv.contains("search corral.test"),
        "{resolv}"
    );
    let report = ssh
        .check("sudo corral config validate", CMD)
        .expect("validate exits 0");
    // cloud-init's time zone, in the console.
    assert_eq!(
        ssh.check(
            "cat /etc/timezone; readlink /etc/localtime; date -d @0 +%Z%z",
            CMD
        )
        .expect("the time zone"),
        "Europe/Paris\n/usr/share/zoneinfo/Europe/Paris\nCET+0100\n",
        "1970-01-01 was winter time in Paris"
    );
    // cloud-init's time servers, on chronyd's command line.
    let chronyd = ssh
        .eventually(
            "ps -C chronyd -o args= | grep 'server 10.0.2.2 iburst'",
            BOOT,
            CMD,
        )
        .expect("chronyd uses the configured server");
    assert!(!chronyd.contains("2.debian.pool"), "{chronyd}");
    // RancherOS's command, with RancherOS's keys.
    let ros = ssh
        .check("sudo ros config get rancher.network.dns.nameservers", CMD)
        .expect("ros config get");
    assert!(ros.contains("9.9.9.9"), "{ros}");
    // A console whose image is not here is refused, and the console keeps running.
    let (code, out) = ssh
        .run("sudo ros console switch ubuntu 2>&1", CMD)
        .expect("ros console switch");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("there is no console \"ubuntu\" here"), "{out}");
    // RancherOS's user: the same keys, home (through /home/rancher), sudo and docker.
    let rancher = Ssh {
        user: "rancher".into(),
        ..ssh_as_corral(port, &key.private)
    };
    let said = rancher
        .check(
            "echo $USER; cat /home/rancher/hello.txt; echo; sudo -n true && echo sudo-ok; id -Gn",
            CMD,
        )
        .expect("ssh rancher@");
    assert!(
        said.starts_with("rancher\nhello from cidata\nsudo-ok\n"),
        "{said}"
    );
    assert!(said.contains("docker") && !said.contains("sudo:"), "{said}");
    // cloud-init's users: alice logs in with her key, is in group docker, has sudo.
    let alice = Ssh {
        user: "alice".into(),
        ..ssh_as_corral(port, &key.private)
    };
    let said = alice
        .check("id -un; sudo -n true && echo sudo-ok; id -Gn; pwd", CMD)
        .expect("ssh alice@");
    assert!(said.starts_with("alice\nsudo-ok\n"), "{said}");
    assert!(
        said.contains("docker") && said.contains("/home/alice"),
        "{said}"
    );
    assert!(
        !said.contains("sudo:"),
        "sudo reads its rules quietly: {said}"
    );
    // RancherOS's /etc/docker: a daemon.json merged into Corral's, a registry's CA where
    // the engine reads it.
    let labels = ssh
        .eventually(
            "docker info --format '{{json .Labels}}' | grep from=write_files",
            BOOT,
            CMD,
        )
        .expect("the user's daemon.json reaches the engine");
    assert!(labels.contains("from=write_files"), "{labels}");
    assert_eq!(
        ssh.check(
            "cat /run/corral/docker/certs.d/reg.corral.test:5000/ca.crt",
            CMD
        )
        .expect("the CA in the engine's /etc/docker")
        .trim(),
        "a registry's CA"
    );
    // RancherOS's registry credentials, in docker's client configuration of corral
    // and root.
    for (who, file) in [
        ("", "~/.docker/config.json"),
        ("sudo ", "/root/.docker/config.json"),
    ] {
        let config = ssh
            .check(&format!("{who}cat {file}"), CMD)
            .expect("docker's client configuration");
        assert!(
            config.contains("\"reg.corral.test:5000\"") && config.contains("ZTJlOnNlY3JldA=="),
            "{file}: {config}"
        );
    }
    // A RancherOS file with a `corral:` section and a console Corral does not ship: read
    // whole (the key above let us in), with a warning for each.
    assert!(report.contains("valid (3 warnings)"), "{report}");
    assert!(
        report.contains("network.interfaces.mac=52:54:00:12:34:5f: mtu 5 is out of range"),
        "{report}"
    );
    assert!(
        report.contains("`corral.sysctl.vm.swappiness` is used"),
        "{report}"
    );
    assert!(
        report.contains("`corral.console: ubuntu` is not a console Corral ships"),
        "{report}"
    );
    // From the host side (the debug shell).
    assert_eq!(
        vm.check("cat /var/lib/corral/blob", CMD).expect("b64 file"),
        "hello b64"
    );
    vm.check("test -f /run/bootcmd-ran", CMD)
        .expect("bootcmd ran on the host");
    vm.eventually(
        "test -f /run/runcmd-ran && test -f /home/corral/runcmd-argv",
        CMD,
        CMD,
    )
    .expect("runcmd ran");
    // The console started again in the same boot: runcmd does not run again.
    let from = vm.console.mark();
    vm.check("corral service restart console", CMD)
        .expect("restart the console");
    vm.console
        .wait(from, BOOT, |t| {
            t.contains("runcmd ran at this boot's first console start; not again")
                .then_some(())
        })
        .expect("the restarted console says runcmd is not run again");
    ssh.wait_ready(BOOT)
        .expect("sshd back after the console's restart");
    assert_eq!(
        vm.check("cat /run/runcmd-count", CMD)
            .expect("count")
            .trim(),
        "ran",
        "runcmd ran once this boot"
    );
    // RancherOS's start scripts, after runcmd, once this boot, in RancherOS's order;
    // start.sh in the host's /opt, which the user engine shares.
    assert_eq!(
        vm.check(
            "cat /run/start-scripts; test -x /opt/rancher/bin/start.sh",
            CMD
        )
        .expect("the start scripts ran"),
        "start.sh\nrc.local\n"
    );
    // A CA under /etc/ssl/certs reaches both engines' CA directories.
    assert_eq!(
        vm.check(
            "cat /run/corral/certs/corral-e2e-ca.pem; for p in $(pidof dockerd); do \
             tr '\\0' '\\n' < /proc/$p/environ | grep ^SSL_CERT_DIR=; done",
            CMD
        )
        .expect("the CA shared")
        .trim_end(),
        "a private CA\nSSL_CERT_DIR=/etc/ssl/certs:/run/corral/certs\nSSL_CERT_DIR=/etc/ssl/certs:/run/corral/certs"
    );
    assert_eq!(
        vm.check("cat /proc/sys/vm/swappiness", CMD)
            .expect("sysctl")
            .trim(),
        "13"
    );
    let log = vm
        .check("cat /var/log/cloud-config.log", CMD)
        .expect("report");
    assert!(log.contains("user-data from nocloud:/dev/sr"), "{log}");
    assert_eq!(
        vm.check(
            "stat -c %a /var/lib/corral/conf /var/lib/corral/conf/user-data",
            CMD
        )
        .expect("modes"),
        "700\n600\n"
    );
    let status = vm
        .eventually(
            "corral-manager status | grep -o 'hello=running'",
            Duration::from_secs(120),
            CMD,
        )
        .expect("the extra service runs");
    assert_eq!(status.trim(), "hello=running");
    // corral.environment reached the services; the file reached the syslog container.
    vm.check(
        "for p in /proc/[0-9]*; do grep -qa CORRAL_E2E=yes-env $p/environ 2>/dev/null && exit 0; done; exit 1",
        CMD,
    )
    .expect("a service process has CORRAL_E2E");
    vm.check(
        "for p in /proc/[0-9]*; do grep -qa /var/log/messages $p/cmdline 2>/dev/null && \
         grep -q 'into syslog' $p/root/etc/from-cloud-config && exit 0; done; exit 1",
        CMD,
    )
    .expect("write_files with container: syslog");
    check_bond_and_vlan(&mut vm);
    check_bridge_ipv6_and_commands(&mut vm);
    check_dhcpv6_address(&ssh, &mut vm);
    let _ = ssh.run("sudo poweroff", CMD);
    vm.wait_exit(Duration::from_secs(120))
        .expect("QEMU exits after poweroff");
}

/// A DHCPv6-assigned address: eth6 moved into a container of the user engine that runs
/// dnsmasq (QEMU's user network has no DHCPv6 server), and eth5's udhcpc6 (`dhcp: true`)
/// takes an address from its range, which only DHCPv6 hands out (dnsmasq's router
/// advertisements for a DHCPv6 range carry no prefix for SLAAC).
fn check_dhcpv6_address(ssh: &Ssh, vm: &mut Vm) {
    let image = format!("corral/dnsmasq:{}", env!("CARGO_PKG_VERSION"));
    ssh.eventually(
        &format!("docker image inspect {image} >/dev/null"),
        BOOT,
        CMD,
    )
    .expect("the dnsmasq image is preloaded");
    ssh.check(
        &format!(
            "docker run -d --name dhcp6 --network none --cap-add NET_ADMIN --cap-add NET_RAW \
             {image} sleep 600 && \
             sudo ip link set eth6 netns $(docker inspect -f '{{{{.State.Pid}}}}' dhcp6) && \
             docker exec dhcp6 sh -c 'ip link set eth6 up && ip -6 addr add fd00:77::1/64 dev eth6' && \
             docker exec -d dhcp6 dnsmasq -k -u root -g root --interface=eth6 --port=0 \
             --no-resolv --no-hosts --enable-ra --dhcp-leasefile=/tmp/leases \
             --dhcp-range=fd00:77::100,fd00:77::1ff,64,10m --log-dhcp --log-facility=/tmp/dnsmasq.log"
        ),
        CMD,
    )
    .expect("dnsmasq serves eth6's link");
    let found = vm.eventually(
        "ip -6 -o addr show dev eth5 | grep -E 'inet6 fd00:77::1[0-9a-f]{2}/'",
        Duration::from_secs(180),
        CMD,
    );
    let log = ssh
        .run("docker exec dhcp6 cat /tmp/dnsmasq.log", CMD)
        .map(|(_, out)| out)
        .unwrap_or_default();
    let found =
        found.unwrap_or_else(|e| panic!("eth5 has a DHCPv6 address: {e:?}; dnsmasq: {log}"));
    eprintln!("nocloud: DHCPv6 on eth5: {found}");
    assert!(log.contains("DHCPREPLY"), "dnsmasq: {log}");
}

/// The bond of eth1 and eth2 with its options, the VLAN on it, their addresses, and the
/// modules the manager loaded for them (the network service cannot load modules).
fn check_bond_and_vlan(vm: &mut Vm) {
    let bond = vm
        .eventually(
            "grep -q 'Slave Interface: eth2' /proc/net/bonding/bond0 && cat /proc/net/bonding/bond0",
            Duration::from_secs(120),
            CMD,
        )
        .expect("bond0 with both members");
    let said = vm
        .check(
            "grep -h -o '\"network: [^\"]*' /var/lib/system-docker/containers/*/*-json.log",
            CMD,
        )
        .unwrap_or_default();
    eprintln!("nocloud: the network service said\n{said}");
    for says in [
        "Bonding Mode: fault-tolerance (active-backup)",
        "MII Polling Interval (ms): 100",
        "Slave Interface: eth1",
    ] {
        assert!(bond.contains(says), "{says}: {bond}");
    }
    let vlan = vm
        .eventually("cat /proc/net/vlan/vlan100", Duration::from_secs(60), CMD)
        .expect("the VLAN");
    assert!(
        vlan.contains("VID: 100") && vlan.contains("Device: bond0"),
        "{vlan}"
    );
    let addresses = vm
        .eventually(
            "ip -4 -o addr show dev vlan100 | grep -q 10.0.4.2/24 && ip -4 -o addr show",
            Duration::from_secs(60),
            CMD,
        )
        .expect("the VLAN's address");
    assert!(
        addresses
            .lines()
            .any(|l| l.contains(" bond0 ") && l.contains("inet 10.0.3.2/24")),
        "the bond's address: {addresses}"
    );
    vm.check(
        "test -d /sys/module/bonding && test -d /sys/module/8021q",
        CMD,
    )
    .expect("bonding and 8021q loaded");
}

/// The bridge with its port and address, static IPv4 and IPv6 with the IPv6 gateway
/// answering, SLAAC from QEMU's router advertisements on eth0, the commands before and
/// after the network and each interface, and the errors for what cannot be done.
fn check_bridge_ipv6_and_commands(vm: &mut Vm) {
    // Each interface's alias, MTU and master, from sysfs: `name alias mtu master`.
    let links = vm
        .eventually(
            "grep -q post-cmds-ran /sys/class/net/eth4/ifalias && for l in /sys/class/net/*; do \
             echo \"${l##*/} $(cat $l/ifalias) $(cat $l/mtu) $(readlink $l/master)\"; done",
            Duration::from_secs(120),
            CMD,
        )
        .expect("post_cmds ran after every interface");
    eprintln!("nocloud: links\n{links}");
    let line = |name: &str| {
        links
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("lo").contains("pre-cmds-ran"), "pre_cmds: {links}");
    assert!(line("eth3").ends_with("/br0"), "eth3 in br0: {links}");
    // pre_cmds ran a bash script that write_files put into the network service.
    assert!(
        line("eth3").contains("bash-pre"),
        "pre_cmds' script: {links}"
    );
    assert_eq!(
        line("br0"),
        "br0 pre-up-br0 1400 ",
        "br0's pre_up and post_up: {links}"
    );
    vm.eventually(
        "grep -q dhcp-post-up-eth0 /sys/class/net/eth0/ifalias",
        Duration::from_secs(60),
        CMD,
    )
    .expect("eth0's post_up ran after its lease");
    let addresses = vm
        .eventually(
            "ip -o addr show dev eth0 | grep -q 'inet6 fec0::' && ip -o addr show",
            Duration::from_secs(90),
            CMD,
        )
        .unwrap_or_else(|e| {
            let why = vm
                .check(
                    "grep . /proc/sys/net/ipv6/conf/*/forwarding /proc/sys/net/ipv6/conf/*/accept_ra; \
                     ip -6 addr; ip -6 route",
                    CMD,
                )
                .unwrap_or_default();
            panic!("a SLAAC address on eth0 from QEMU's router advertisements: {e:?}\n{why}")
        });
    eprintln!("nocloud: addresses\n{addresses}");
    for (dev, addr) in [
        ("br0", "inet 10.0.5.2/24"),
        ("eth4", "inet 10.0.14.15/24"),
        ("eth4", "inet6 fd00:14::15/64"),
        ("eth4", "inet6 fe80::"),
    ] {
        assert!(
            addresses
                .lines()
                .any(|l| l.contains(&format!(" {dev} ")) && l.contains(addr)),
            "{dev} {addr}: {addresses}"
        );
    }
    assert!(
        !addresses
            .lines()
            .any(|l| l.contains(" eth3 ") && l.contains("inet ")),
        "a bridge's port carries no address: {addresses}"
    );
    // QEMU's side of eth4 answers on both addresses: the static ones work.
    vm.eventually(
        "ping -c 1 -W 2 fd00:14::2 && ping -c 1 -W 2 10.0.14.2",
        Duration::from_secs(60),
        CMD,
    )
    .expect("QEMU answers on eth4 over IPv6 and IPv4");
    let routes = vm.check("ip -6 route show default", CMD).expect("routes");
    assert!(routes.contains("via fd00:14::2 dev eth4"), "{routes}");
    vm.check(
        "test -d /sys/module/bridge && ps -o args | grep -v grep | grep -q 'udhcpc6 -f -i eth0'",
        CMD,
    )
    .expect("the bridge module loaded and DHCPv6 asked for on eth0");
    // rancher.state from the seed, read by PID 1 before the state is mounted.
    let console = vm.console.text();
    for says in [
        "state settings from nocloud:/dev/sr0: corral.state.dev=LABEL=SEEDED_STATE \
         corral.state.autoformat=[/dev/vda] corral.state.fstype=auto",
        "formatting blank /dev/vda as SEEDED_STATE",
        "state: /dev/vda mounted on /run/corral/state (formatted now)",
    ] {
        assert!(console.contains(says), "PID 1 says {says}");
    }
    let mounts = vm
        .check(
            "grep -E ' /(run/corral/state|var/lib/docker) ' /proc/mounts",
            CMD,
        )
        .expect("mounts");
    assert!(
        mounts.contains("/dev/vda /run/corral/state ext4")
            && mounts.contains("/dev/vda /var/lib/docker ext4"),
        "{mounts}"
    );
    let kernel = vm.check("dmesg", CMD).expect("dmesg");
    for says in [
        "network.interfaces.eth9: this machine has no interface eth9; bond bond0 is made without it",
        "network.interfaces.mac=52:54:00:12:34:5f: mtu 5 is out of range",
    ] {
        assert!(kernel.contains(says), "the manager says {says}: {kernel}");
    }
}

#[test]
fn ec2_metadata_over_imdsv2_gives_the_key_and_the_hostname() {
    let dir = log_dir("ec2-imds");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-ec2").expect("key pair");
    // A RancherOS service repository (index.yml, <first letter>/<name>.yml) on the
    // host's loopback, reached through QEMU's guestfwd.
    let repo = dir.join("repository");
    let _ = std::fs::remove_dir_all(&repo);
    for (name, sub) in [("hello-repo", "h"), ("other-repo", "o")] {
        std::fs::create_dir_all(repo.join(sub)).expect("mkdir");
        std::fs::write(
            repo.join(sub).join(format!("{name}.yml")),
            format!(
                "{name}:\n  image: corral/base:{}\n  command: [sleep, '3600']\n  restart: always\n  \
                 labels: {{io.rancher.os.scope: system}}\n",
                env!("CARGO_PKG_VERSION")
            ),
        )
        .expect("a service file");
    }
    std::fs::write(
        repo.join("index.yml"),
        "services: [hello-repo, other-repo]\nconsoles: [debian]\n",
    )
    .expect("index");
    let served = corral_harness::files::FileServer::start(&repo, None).expect("file server");
    let fake = FakeImds::start(Instance {
        instance_id: "i-0123456789abcdef0".into(),
        local_hostname: "ip-10-0-0-7.ec2.internal".into(),
        region: "eu-west-1".into(),
        public_keys: vec![("e2e".into(), key.public.clone())],
        user_data: Some(
            b"#cloud-config\nruncmd:\n  - echo from-ec2 > /run/ec2-runcmd\nrancher:\n  \
              repositories:\n    e2e: {url: 'http://169.254.169.253:8080'}\n  \
              services_include: {hello-repo: true}\n"
                .to_vec(),
        ),
        require_token: true,
        v1_only: false,
    })
    .expect("fake IMDS");
    let mut cfg = VmConfig::new(kernel_boot(""));
    let port = free_port().expect("port");
    cfg.ssh_port = Some(port);
    cfg.metadata_port = Some(fake.port);
    cfg.guest_forwards = vec![("169.254.169.253:8080".into(), served.port)];
    cfg.smbios_vendor = Some("Amazon EC2".into());
    let mut vm = Vm::start("ec2-imds", &cfg, &dir, Vec::new()).expect("start QEMU");
    let ssh = ssh_as_corral(port, &key.private);
    ssh.wait_ready(BOOT)
        .expect("sshd accepts the key from the metadata");
    assert_eq!(
        ssh.check("hostname", CMD).expect("hostname").trim(),
        "ip-10-0-0-7.ec2.internal"
    );
    vm.eventually("grep -q from-ec2 /run/ec2-runcmd", CMD, CMD)
        .expect("the user-data's runcmd ran");
    let requests = fake.requests();
    assert_eq!(
        requests.first().map(String::as_str),
        Some("PUT /latest/api/token token=no"),
        "{requests:?}"
    );
    assert!(
        requests[1..].iter().all(|r| r.ends_with("token=yes")),
        "every GET carries the token: {requests:?}"
    );
    assert!(requests
        .iter()
        .any(|r| r.starts_with("GET /latest/user-data")));
    let log = vm
        .check("cat /var/log/cloud-config.log", CMD)
        .expect("report");
    assert!(log.contains("user-data from ec2 "), "{log}");
    check_service_repository(&ssh, &served);
    let _ = ssh.run("sudo poweroff", CMD);
    vm.wait_exit(Duration::from_secs(120))
        .expect("QEMU exits after poweroff");
}

/// RancherOS's repositories: `services_include` runs a service fetched from one at
/// boot, `service list` shows what else it offers, and `service enable NAME` fetches it.
fn check_service_repository(ssh: &Ssh, served: &corral_harness::files::FileServer) {
    let listed = |ssh: &Ssh| -> Vec<corral_api::protocol::Service> {
        let out = ssh
            .check("sudo corral service list --format json", CMD)
            .expect("service list");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let state = |list: &[corral_api::protocol::Service], name: &str| {
        list.iter()
            .find(|s| s.name == name)
            .map(|s| (s.state.clone(), s.offered_by.clone()))
    };
    ssh.eventually(
        "sudo corral service list | grep -q 'hello-repo .*running'",
        BOOT,
        CMD,
    )
    .expect("the service from the repository runs");
    let list = listed(ssh);
    assert_eq!(
        state(&list, "other-repo"),
        Some(("available".into(), Some("repository e2e".into()))),
        "{list:?}"
    );
    assert_eq!(
        state(&list, "crond"),
        Some(("available".into(), Some("catalogue".into())))
    );
    let table = ssh.check("sudo corral service list", CMD).expect("table");
    assert!(
        table.contains("FROM") && table.contains("repository e2e"),
        "{table}"
    );
    ssh.check("sudo corral service enable other-repo", CMD)
        .expect("enable from the repository");
    let up = ssh
        .check("sudo corral service up other-repo", CMD)
        .expect("up other-repo");
    assert!(up.contains("running"), "{up}");
    assert_eq!(
        state(&listed(ssh), "other-repo").map(|s| s.0),
        Some("running".into())
    );
    ssh.check(
        "sudo test -f /var/lib/corral/conf/services-available/hello-repo.yml && \
         sudo test -f /var/lib/corral/conf/services-available/other-repo.yml",
        CMD,
    )
    .expect("both kept for later boots");
    let (code, out) = ssh
        .run("sudo corral service enable no-such-service 2>&1", CMD)
        .expect("runs");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the repositories: e2e:"), "{out}");
    let requests = served.requests();
    for path in [
        "GET /h/hello-repo.yml",
        "GET /index.yml",
        "GET /o/other-repo.yml",
    ] {
        assert!(
            requests.iter().any(|r| r.starts_with(path)),
            "{path}: {requests:?}"
        );
    }
}

#[test]
fn broken_user_data_is_rejected_and_the_machine_still_boots() {
    let dir = log_dir("broken-user-data");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-broken").expect("key pair");
    let seed = nocloud_iso(
        &dir,
        b"#cloud-config\nhostname: broken-node\nwrite_files:\n  - path: relative/path\nrancher:\n  network: [oops\n",
        "instance-id: iid-broken\n",
    )
    .expect("cidata ISO");
    let (cfg, port) = seeded(&key.kernel_option(), seed);
    let mut vm = Vm::start("broken-user-data", &cfg, &dir, Vec::new()).expect("start QEMU");
    let ssh = ssh_as_corral(port, &key.private);
    ssh.wait_ready(BOOT)
        .expect("sshd accepts the command line's key despite the bad user-data");
    assert_ne!(
        ssh.check("hostname", CMD).expect("hostname").trim(),
        "broken-node",
        "nothing of the rejected user-data applies"
    );
    let (code, out) = ssh
        .run("sudo corral config validate", CMD)
        .expect("validate runs");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("/var/lib/corral/conf/user-data.rejected: line 7 column 1"),
        "{out}"
    );
    let console = vm.console.text();
    assert!(
        console.contains("cloud-config: user-data from nocloud:/dev/sr")
            && console.contains("rejected whole"),
        "the error is on the console"
    );
    let log = vm
        .check("cat /var/log/cloud-config.log", CMD)
        .expect("report");
    assert!(log.contains("error: user-data from nocloud"), "{log}");
    // A 50 KB document whose aliases expand to 10^8 values is refused in bounded time
    // by the same parser (the CLI's, in the console), before anything is built.
    let items = vec!["x"; 10_000].join(", ");
    let aliases = vec!["*a"; 10_000].join(", ");
    let bomb = dir.join("aliases.yml");
    std::fs::write(
        &bomb,
        format!("#cloud-config\nrancher:\n  a: &a [{items}]\n  b: [{aliases}]\n"),
    )
    .expect("write the alias document");
    ssh.run_with_input("cat > /tmp/aliases.yml", Some(&bomb), CMD)
        .expect("copy the alias document");
    let started = std::time::Instant::now();
    let (code, out) = ssh
        .run("corral config validate -i /tmp/aliases.yml 2>&1", CMD)
        .expect("validate runs");
    eprintln!(
        "broken-user-data: the alias document refused in {:.1}s (exit {code})",
        started.elapsed().as_secs_f64()
    );
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("expands to more than 1000000 values"), "{out}");
    let _ = ssh.run("sudo poweroff", CMD);
    vm.wait_exit(Duration::from_secs(120))
        .expect("QEMU exits after poweroff");
}

/// A console that cannot start (here a cloud-config that overrides its image with one
/// that does not exist): after `corral.rescue_after` seconds the manager runs the
/// console's own program on the host, so the user's key still lets them in, with
/// sudo and the `corral` command, and the console says why. Before that, the rescue
/// console itself is kept from starting (a file where its directory goes): with
/// `corral.recovery=shell` a root shell opens on the machine's console, and the rescue
/// console is tried again a minute later.
#[test]
fn a_console_that_cannot_start_leaves_a_rescue_way_in() {
    let dir = log_dir("rescue");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-rescue").expect("key pair");
    let user_data = format!(
        "#cloud-config\nssh_authorized_keys:\n  - {}\ncorral:\n  services:\n    console:\n      image: corral/no-such-console:1\n",
        key.public
    );
    let seed =
        nocloud_iso(&dir, user_data.as_bytes(), "instance-id: iid-rescue\n").expect("cidata ISO");
    let (cfg, port) = seeded("corral.rescue_after=20 corral.recovery=shell", seed);
    let mut vm = Vm::start("rescue", &cfg, &dir, Vec::new()).expect("start QEMU");
    vm.check(
        "mkdir -p /run/corral && rm -rf /run/corral/rescue && touch /run/corral/rescue",
        CMD,
    )
    .expect("a file in the rescue console's way");
    vm.wait_for("service console: failed", BOOT)
        .expect("the console cannot start");
    vm.wait_for("a root shell is open on the console", BOOT)
        .expect("the emergency shell opens when the rescue console cannot start");
    let shells = vm
        .check(
            "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = sh ] && \
             [ \"$(readlink $p/fd/0)\" = /dev/console ] && echo ${p#/proc/}; done; true",
            CMD,
        )
        .expect("processes");
    assert_eq!(
        shells.lines().count(),
        1,
        "one shell on /dev/console: {shells}"
    );
    let from = vm.console.mark();
    vm.check("rm /run/corral/rescue", CMD)
        .expect("out of the way");
    vm.console
        .wait(from, BOOT, |t| {
            t.contains("corral-console: started sshd").then_some(())
        })
        .expect("the rescue console starts at the next try");
    // Its getty has the console now: the root shell there is closed.
    vm.eventually(
        "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = sh ] && \
         [ \"$(readlink $p/fd/0)\" = /dev/console ] && exit 1; done; exit 0",
        CMD,
        CMD,
    )
    .expect("the emergency shell is closed once the rescue console runs");
    let console = vm.console.text();
    assert!(
        console.contains("the console service was never created"),
        "the console says why"
    );
    let ssh = ssh_as_corral(port, &key.private);
    ssh.wait_ready(BOOT)
        .expect("the rescue sshd accepts the user's key");
    assert_eq!(ssh.check("id -un", CMD).expect("id").trim(), "corral");
    // On the host itself, not in a container: PID 1 is Corral's init, the kernel's
    // `/init` (in the console container PID 1 is `corral console-init`).
    assert_eq!(
        ssh.check("cat /proc/1/comm", CMD).expect("comm").trim(),
        "init"
    );
    // The rescue console's root is bound from the host's mounts and nothing done to it
    // reaches them: the host's cgroup tree is still there, and the system services
    // still start (the network one brought this ssh in).
    let cgroup = ssh
        .check("awk '$5 == \"/sys/fs/cgroup\"' /proc/1/mountinfo", CMD)
        .expect("mountinfo");
    assert!(cgroup.contains("cgroup2"), "the host's cgroup2: {cgroup}");
    let list = ssh
        .check("sudo corral service list", CMD)
        .expect("sudo and the corral command work");
    assert!(list.contains("network"), "{list}");
    let _ = ssh.run("sudo corral poweroff", CMD);
    vm.wait_exit(Duration::from_secs(120))
        .expect("QEMU exits after poweroff");
}
