//! End-to-end: boot the real artifacts in QEMU (TCG) and check them from the inside
//! through the debug shell on ttyS1. One boot per scenario; many checks per boot.

use corral_harness::{artifact, free_port, log_dir, Boot, Firmware, KeyPair, Ssh, Vm, VmConfig};
use std::process::Command;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(240);
const CMD: Duration = Duration::from_secs(60);
/// The built-in services.
const SERVICES: [&str; 6] = ["network", "syslog", "ntp", "acpid", "console", "docker"];

/// Checks shared by every boot that reaches the system engine and its services.
fn check_running_system(vm: &mut Vm) {
    // PID 1 is Corral's init: the binary behind /proc/1/exe is the one in the root.
    vm.check("cmp /proc/1/exe /usr/sbin/corral-init", CMD)
        .expect("PID 1 is corral-init");
    let mounts = vm.check("cat /proc/self/mounts", CMD).expect("mounts");
    for (target, fstype) in [
        ("/", "overlay"),
        // Booted from the ISO: the root image is read from the CD, not kept in RAM.
        ("/run/corral/medium", "iso9660"),
        ("/run/corral/lower", "squashfs"),
        ("/sys/fs/cgroup", "cgroup2"),
        ("/var/lib/system-docker", "tmpfs"),
        ("/dev/pts", "devpts"),
    ] {
        assert!(
            mounts.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(1) == Some(&target) && f.get(2) == Some(&fstype)
            }),
            "{fstype} on {target} missing from:\n{mounts}"
        );
    }
    // / is shared, for container mount propagation.
    let mountinfo = vm
        .check("grep ' / / ' /proc/self/mountinfo", CMD)
        .expect("mountinfo");
    assert!(mountinfo.contains("shared:"), "/ not shared: {mountinfo}");
    // The engine socket answers through the API, on overlay2 (not the vfs fallback).
    let status = vm
        .check("corral-manager status", CMD)
        .expect("engine status");
    let system = corral_harness::locked_upstream("trixie", "docker.io");
    assert!(status.contains(&format!("docker {system}")), "{status}");
    assert!(status.contains("storage driver overlay2"), "{status}");
    // The system images shipped in the root were loaded, their digests checked.
    vm.wait_for("system images loaded", BOOT)
        .expect("images loaded");
    let status = vm
        .check("corral-manager status", CMD)
        .expect("engine status");
    assert!(
        status.contains("corral/base:"),
        "base image loaded: {status}"
    );
    assert!(
        !vm.console.text().contains("corrupt"),
        "no archive was corrupt"
    );
    // The built-in services run on the system engine.
    for service in SERVICES {
        vm.wait_for(&format!("service {service}: running"), BOOT)
            .unwrap_or_else(|e| panic!("{service} up: {e}"));
    }
    let status = vm
        .check("corral-manager status", CMD)
        .expect("engine status");
    for service in SERVICES {
        assert!(
            status.contains(&format!("{service}=running")),
            "{service}: {status}"
        );
    }
    // The network service got a DHCP lease from QEMU's user network. The tests' network
    // is isolated (restrict=on), and then QEMU's DHCP offers no router and no DNS server.
    let addr = vm
        .check(
            "for i in $(seq 100); do ip -4 addr show eth0 | grep -q 'inet ' && break; sleep 0.2; done; \
             ip -4 addr show eth0; cat /etc/resolv.conf",
            CMD,
        )
        .expect("eth0");
    assert!(addr.contains("inet 10.0.2.15/24"), "{addr}");
    // syslog: a host process's message reaches /var/log/messages.
    vm.check("logger corral-e2e-hello", CMD).expect("logger");
    let wait_log = "for i in $(seq 50); do grep -q corral-e2e-hello /var/log/messages && break; \
                    sleep 0.2; done; grep corral-e2e-hello /var/log/messages";
    vm.check(wait_log, CMD)
        .expect("the message is in /var/log/messages");
    // The engine images carry the CA bundle that ca-certificates' own script would make
    // (the build makes it): the user engine can pull over TLS.
    let certs = vm
        .check(
            "for i in $(seq 150); do for p in $(pidof dockerd); do \
             f=/proc/$p/root/etc/ssl/certs/ca-certificates.crt; \
             [ -s $f ] && grep -c 'BEGIN CERTIFICATE' $f && exit 0; done; sleep 0.2; done; exit 1",
            CMD,
        )
        .expect("the user engine's CA bundle");
    assert!(
        certs.trim().parse::<u32>().unwrap_or(0) > 100,
        "certificates in the user engine's bundle: {certs}"
    );
    // So does the host root: the manager checks https fetches (user-data, `corral service
    // enable URL`) against it.
    let host_certs = vm
        .check(
            "grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt",
            CMD,
        )
        .expect("the host's CA bundle");
    assert!(
        host_certs.trim().parse::<u32>().unwrap_or(0) > 100,
        "certificates in the host's bundle: {host_certs}"
    );
    // The manager killed (the OOM killer, a panic, kill -9), three times: PID 1 starts it
    // again, and the new one takes over the running engine (no second dockerd, the
    // services untouched), answers the `corral` command again and watches the services
    // (the ntp check below runs after the last takeover).
    let engine_pid = vm
        .check("cat /run/system-docker.pid", CMD)
        .expect("engine pid");
    let chronyd = vm.check("pidof chronyd", CMD).expect("chronyd runs");
    for round in 1..=3 {
        let from = vm.console.mark();
        vm.check("kill -9 $(pidof corral-manager)", CMD)
            .expect("kill the manager");
        vm.console
            .wait(from, BOOT, |t| t.contains("taking it over").then_some(()))
            .unwrap_or_else(|| panic!("round {round}: the new manager takes the engine over"));
        vm.check(
            "for i in $(seq 150); do corral service list >/dev/null 2>&1 && exit 0; sleep 0.2; done; \
             corral service list",
            CMD,
        )
        .unwrap_or_else(|e| panic!("round {round}: the API answers again: {e}"));
        vm.console
            .wait(from, BOOT, |t| {
                t.contains("the configuration was applied earlier in this boot")
                    .then_some(())
            })
            .unwrap_or_else(|| panic!("round {round}: the configuration is not applied twice"));
    }
    let engines = vm
        .check(
            "for p in $(pidof dockerd); do tr '\\0' ' ' < /proc/$p/cmdline; echo; done | \
             grep -c -- --pidfile=/run/system-docker.pid",
            CMD,
        )
        .expect("count the system engines");
    assert_eq!(engines.trim(), "1", "one system dockerd");
    assert_eq!(
        vm.check("cat /run/system-docker.pid", CMD).expect("pid"),
        engine_pid,
        "the same engine throughout"
    );
    assert_eq!(
        vm.check("pidof chronyd", CMD).expect("chronyd runs"),
        chronyd,
        "the services were not restarted by a takeover"
    );
    // ntp: its process killed from outside, the manager's watcher brings it back.
    let before = vm.check("pidof chronyd", CMD).expect("chronyd runs");
    vm.check("kill -9 $(pidof chronyd)", CMD)
        .expect("kill chronyd");
    let wait_new = format!(
        "for i in $(seq 100); do p=$(pidof chronyd) && [ \"$p\" != \"{}\" ] && echo $p && exit 0; \
         sleep 0.2; done; exit 1",
        before.trim()
    );
    let after = vm.check(&wait_new, CMD).expect("chronyd is running again");
    assert_ne!(before.trim(), after.trim(), "a new chronyd process");
    // Least privilege: the services that parse network input (DHCP, NTP) and acpid are
    // not privileged: no CAP_SYS_ADMIN (bit 21), which a privileged container has; each
    // has the one capability it needs beyond Docker's defaults.
    // chronyd was just started again above: while it changes to its user it has no
    // effective capabilities for a moment (setuid, then its capabilities set back), so
    // each program's set is read again for up to 30 s until it holds the one it needs.
    for (program, needs) in [("udhcpc", 12), ("chronyd", 25), ("acpid", 5)] {
        let settled = std::time::Instant::now() + Duration::from_secs(30);
        let (status, caps) = loop {
            let status = vm
                .check(
                    &format!("grep CapEff /proc/$(pidof {program} | cut -d' ' -f1)/status"),
                    CMD,
                )
                .unwrap_or_else(|e| panic!("{program}'s capabilities: {e}"));
            let caps = status
                .split_whitespace()
                .nth(1)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or_else(|| panic!("{program}: {status}"));
            if caps & (1 << needs) != 0 || std::time::Instant::now() > settled {
                break (status, caps);
            }
            std::thread::sleep(Duration::from_secs(1));
        };
        assert_eq!(caps & (1 << 21), 0, "{program} is not privileged: {status}");
        assert_ne!(
            caps & (1 << needs),
            0,
            "{program} keeps capability {needs}: {status}"
        );
    }
    // The OS services share one containerd shim (the `io.containerd.runc.v2.group`
    // annotation, manager/src/services.rs); the user engine's container has its own.
    // Each task's bundle names the socket of the shim that serves it.
    let addresses = vm
        .check(
            "for f in /run/system-docker/containerd/daemon/io.containerd.runtime.v2.task/moby/*/address; \
             do cat $f; echo; done",
            CMD,
        )
        .expect("the tasks' shim addresses");
    let mut shims: std::collections::BTreeMap<&str, usize> = Default::default();
    for a in addresses.lines().map(str::trim).filter(|l| !l.is_empty()) {
        *shims.entry(a).or_default() += 1;
    }
    let mut counts: Vec<usize> = shims.into_values().collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![1, SERVICES.len() - 1],
        "one shim for docker, one for the other services:\n{addresses}"
    );
    let sock = vm
        .check("stat -c '%U:%G %a' /run/system-docker.sock", CMD)
        .expect("stat");
    assert_eq!(
        sock.trim(),
        "root:root 660",
        "system engine socket is root only"
    );
    // Modules were loaded from the root: virtio_net is up and modprobe works.
    vm.check("test -d /sys/module/virtio_net", CMD)
        .expect("virtio_net loaded");
    vm.check("modprobe veth && test -d /sys/module/veth", CMD)
        .expect("modprobe veth");
    // Zombies are reaped: orphans are re-parented to PID 1, and an orphan's exit leaves
    // no zombie whose parent is PID 1. (Other parents, such as containerd with its
    // shims, reap their own children in their own time.)
    let orphan_pid = vm.check("sh -c 'sleep 1 & echo $!'", CMD).expect("orphan");
    std::thread::sleep(Duration::from_secs(2));
    assert_no_zombie_of_pid1(vm);
    let gone = vm
        .run(&format!("test -e /proc/{}", orphan_pid.trim()), CMD)
        .expect("test");
    assert_ne!(gone.0, 0, "the orphan was reaped, not left as a zombie");
    // The manager restarts the system engine when it dies.
    let from = vm.console.mark();
    vm.check("kill -9 $(cat /run/system-docker.pid)", CMD)
        .expect("kill dockerd");
    vm.console
        .wait(from, BOOT, |t| {
            t.contains("system engine ready").then_some(())
        })
        .expect("the system engine comes back after a kill -9");
    // Its containers were killed before it started again (dockerd/src/leftover.rs).
    vm.console
        .wait(from, CMD, |t| {
            t.contains("leftover containers").then_some(())
        })
        .expect("the dead engine's containers are killed before it starts again");
    vm.console
        .wait(from, BOOT, |t| {
            t.contains("system images loaded").then_some(())
        })
        .expect("and the manager checks the images again");
    vm.check("corral-manager status", CMD)
        .expect("engine answers again");
    for service in SERVICES {
        vm.console
            .wait(from, BOOT, |t| {
                t.contains(&format!("service {service}: running"))
                    .then_some(())
            })
            .unwrap_or_else(|| panic!("{service} back after the engine restart"));
    }
}

/// No process whose parent is PID 1 is a zombie: PID 1 reaps what it inherits.
fn assert_no_zombie_of_pid1(vm: &mut Vm) {
    // Processes come and go during the scan; the loop's own errors are not findings.
    let zombies_of_pid1 = "( for f in /proc/[0-9]*/stat; do read -r pid comm state ppid rest < $f; \
                           [ \"$state\" = Z ] && [ \"$ppid\" = 1 ] && echo \"$pid $comm\"; done ) 2>/dev/null; true";
    let zombies = vm.check(zombies_of_pid1, CMD).expect("scan /proc");
    assert!(
        zombies.trim().is_empty(),
        "zombies of PID 1 left: {zombies}"
    );
}

/// 10,000 orphans, made and exited: PID 1 reaps every one (no zombie whose parent is
/// PID 1) and stays small (VmRSS under 2 MiB).
fn check_orphan_storm(vm: &mut Vm) {
    // Each `( : & )` is a subshell whose background child outlives it: re-parented to
    // PID 1, which must reap it.
    vm.check(
        "i=0; while [ $i -lt 10000 ]; do ( : & ); i=$((i+1)); done",
        Duration::from_secs(600),
    )
    .expect("10,000 orphans");
    std::thread::sleep(Duration::from_secs(3));
    assert_no_zombie_of_pid1(vm);
    let status = vm
        .check("grep VmRSS /proc/1/status", CMD)
        .expect("PID 1's status");
    let kib: u64 = status
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("VmRSS in {status}"));
    assert!(kib < 2048, "PID 1's RSS after 10,000 orphans: {status}");
}

/// After a poweroff was asked for: everything stops and QEMU exits by itself.
fn check_clean_poweroff(vm: &mut Vm) {
    let status = vm
        .wait_exit(Duration::from_secs(120))
        .expect("QEMU exits after poweroff");
    assert!(status.success(), "QEMU exit status {status}");
    let console = vm.console.text();
    assert!(
        console.contains("services ended in"),
        "manager ended the services"
    );
    // Every service's process gone: the engine is killed, not left to tear the
    // containers down (docs/services.md); the unmounts below must still all succeed.
    assert!(
        console.contains("killing: system engine (every service has exited)")
            && console.contains("system engine's dockerd killed"),
        "manager killed the engine once the services had exited"
    );
    assert!(
        console.contains("root read-only; powering off"),
        "init finished its shutdown"
    );
    assert!(
        console.contains("reboot: Power down"),
        "the kernel powered off"
    );
    assert!(!console.contains("Kernel panic"), "no panic");
    assert!(
        !console.contains("failed: EBUSY"),
        "every unmount succeeded"
    );
    assert!(
        !console.contains("did not stop within"),
        "manager and shell stopped in time"
    );
    assert!(
        console.contains(" 0 failed; root read-only"),
        "no unmount failed"
    );
}

#[test]
fn iso_boots_by_bios_and_a_user_logs_in_over_ssh() {
    let dir = log_dir("iso-bios");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-e2e").expect("key pair");
    let mut cfg = VmConfig::new(Boot::Iso(artifact("corral.iso")));
    let port = free_port().expect("a free port");
    cfg.ssh_port = Some(port);
    // isolinux waits one second at "boot:"; the harness picks the debug entry and adds
    // the key, as a user would type it.
    let answers = vec![(
        "boot:".to_string(),
        format!("debug {}\n", key.kernel_option()),
    )];
    let mut vm = Vm::start("iso-bios", &cfg, &dir, answers).expect("start QEMU");
    let at = vm
        .wait_for("system engine ready", BOOT)
        .expect("system engine ready");
    eprintln!("iso-bios: system engine ready {at:.1}s after QEMU started");
    let cmdline = vm.check("cat /proc/cmdline", CMD).expect("cmdline");
    assert!(cmdline.contains("console=ttyS0"), "{cmdline}");
    // A kernel panic reboots the machine instead of hanging it.
    let panic = vm.check("cat /proc/sys/kernel/panic", CMD).expect("panic");
    assert_eq!(panic.trim(), "10", "{cmdline}");
    let ssh = Ssh {
        port,
        user: "corral".into(),
        key: key.private.clone(),
    };
    let ready = ssh.wait_ready(BOOT).expect("sshd accepts the key");
    eprintln!(
        "iso-bios: sshd accepted the key {:.1}s after QEMU started",
        ready.duration_since(vm.started).as_secs_f64()
    );
    check_console_over_ssh(&mut vm, &ssh);
    // Bad services files, read at the next engine start (the kill -9 below): each error
    // names its file, service and problem; everything else still comes up.
    vm.check(
        "mkdir -p /var/lib/corral/conf/services && cd /var/lib/corral/conf/services && \
         printf 'services: [oops\\n' > broken.yml && \
         printf 'services:\\n  ghost:\\n    image: corral/ghost:1\\n  noimage:\\n    command: x\\n' > missing.yml && \
         printf 'services:\\n  ping:\\n    image: corral/base:0.1.0\\n    labels: {io.rancher.os.after: pong}\\n  pong:\\n    image: corral/base:0.1.0\\n    labels: {io.rancher.os.after: ping}\\n' > cycle.yml",
        CMD,
    )
    .expect("write bad services files");
    check_running_system(&mut vm);
    check_orphan_storm(&mut vm);
    let console = vm.console.text();
    for expected in [
        "/var/lib/corral/conf/services/broken.yml: ",
        "its services are left out, the others start",
        "/var/lib/corral/conf/services/missing.yml: service noimage: has no image",
        "service ghost: failed: image corral/ghost:1 is not loaded",
        "dependency cycle ping -> pong -> ping",
    ] {
        assert!(console.contains(expected), "{expected:?} on the console");
    }
    // The user powers the machine off from the ssh session (the console came back
    // with the engine restart above).
    ssh.wait_ready(BOOT)
        .expect("sshd back after the engine restart");
    let _ = ssh.run("sudo corral poweroff", CMD);
    check_clean_poweroff(&mut vm);
}

/// `corral engine list` and `switch`: a name no image has and a non-engine are refused
/// with the engine untouched; an engine whose dockerd cannot serve fails the switch,
/// the engine in use comes back and nothing is saved.
fn check_engine_switch(ssh: &Ssh) {
    use corral_api::protocol::Engine;
    let switch_wait = Duration::from_secs(300);
    let engines = || -> Vec<Engine> {
        let out = ssh
            .check("sudo corral engine list --format json", CMD)
            .expect("engine list");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let trixie = corral_harness::locked_upstream("trixie", "docker.io");
    let newest = corral_harness::locked_upstream("unstable", "docker.io");
    let old_name = corral_harness::engine_name(&trixie).expect("trixie's engine name");
    let new_name = corral_harness::engine_name(&newest).expect("the newest engine's name");
    let first = engines();
    assert_eq!(
        first,
        [
            Engine {
                image: "corral/engine-trixie:0.1.0".into(),
                name: Some(old_name.clone()),
                version: Some(trixie.clone()),
                current: false
            },
            Engine {
                image: "corral/engine:0.1.0".into(),
                name: Some(new_name.clone()),
                version: Some(newest.clone()),
                current: true
            }
        ],
        "both engine images ship, named by their Docker versions, the newest in use"
    );
    let table = ssh.check("sudo corral engine list", CMD).expect("table");
    assert!(table.starts_with("NAME"), "{table}");
    let (code, out) = ssh
        .run("sudo corral engine switch docker-9.9 2>&1", CMD)
        .expect("switch to an engine that is not there");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "there is no engine named docker-9.9; the engines here: {old_name} (corral/engine-trixie:0.1.0), {new_name} (corral/engine:0.1.0)"
        )),
        "{out}"
    );
    // The switch to Debian 13's engine and back, with what it runs and saves, is the
    // disk scenario's (tests/tests/disk.rs), which also keeps it across a reboot.
    let (code, out) = ssh
        .run("sudo corral engine switch corral/console:0.1.0 2>&1", CMD)
        .expect("switch to a non-engine");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not an engine image"), "{out}");
    ssh.check("docker info --format '{{.ServerVersion}}'", CMD)
        .expect("the engine in use still answers");
    // An engine whose dockerd runs (`--version` works) but cannot serve: the switch
    // fails (exit 2) and the engine in use comes back, saved configuration and all.
    ssh.check(
        "sudo system-docker create --name broken corral/engine:0.1.0 >/dev/null && \
         sudo system-docker commit --change 'ENTRYPOINT [\"dockerd\", \"--no-such-flag\"]' broken corral/engine:broken >/dev/null && \
         sudo system-docker rm broken >/dev/null",
        CMD,
    )
    .expect("a broken engine image");
    let (code, out) = ssh
        .run(
            "sudo corral engine switch corral/engine:broken 2>&1",
            switch_wait,
        )
        .expect("switch to a broken engine");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("its dockerd exited"), "{out}");
    assert!(
        out.contains("the previous engine (corral/engine:0.1.0) is back"),
        "{out}"
    );
    ssh.check("docker info --format '{{.ServerVersion}}'", CMD)
        .expect("the engine in use answers after the failed switch");
    assert!(
        engines()
            .iter()
            .any(|e| e.image == "corral/engine:0.1.0" && e.current),
        "the built-in engine is current again"
    );
    // Nothing was saved: the machine was never switched, so the choice stays unset
    // (the built-in engine), not the engine that failed.
    let (code, out) = ssh
        .run("sudo corral config get corral.docker.engine 2>&1", CMD)
        .expect("config get runs");
    assert!(
        code == 1 && out.contains("corral.docker.engine is not set"),
        "the failed switch saved nothing: {out}"
    );
}

/// What a user sees logged in over ssh as corral.
fn check_console_over_ssh(vm: &mut Vm, ssh: &Ssh) {
    let id = ssh.check("id", CMD).expect("id");
    assert!(id.starts_with("uid=1100(corral)"), "{id}");
    for group in ["27(sudo)", "233(docker)"] {
        assert!(id.contains(group), "{group} in {id}");
    }
    assert_eq!(
        ssh.check("echo $HOME; pwd", CMD).expect("home").trim(),
        "/home/corral\n/home/corral"
    );
    // sudo without a password; no complaint about the host name.
    let whoami = ssh.check("sudo -n whoami 2>&1", CMD).expect("sudo");
    assert_eq!(whoami.trim(), "root", "{whoami}");
    // Keys only, no root: the running sshd's effective settings, and real attempts.
    let t = ssh.check("sudo sshd -T", CMD).expect("sshd -T");
    for line in [
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "permitrootlogin no",
        "pubkeyauthentication yes",
    ] {
        assert!(t.contains(line), "{line} in sshd -T");
    }
    let root = Ssh {
        user: "root".into(),
        ..ssh.clone()
    };
    let (code, out) = root.run("true", CMD).expect("ssh as root");
    assert_ne!(code, 0, "root cannot log in: {out}");
    let password = Command::new("ssh")
        .args(ssh.args())
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "true",
        ])
        .output()
        .expect("ssh without the key");
    let said = String::from_utf8_lossy(&password.stderr);
    assert!(!password.status.success(), "no login without the key");
    assert!(said.contains("Permission denied (publickey)"), "{said}");
    // The host keys were made at first boot, in the directory a state disk keeps.
    let keys = ssh
        .check("sudo ls /var/lib/corral/ssh", CMD)
        .expect("host keys");
    assert!(keys.contains("ssh_host_ed25519_key.pub"), "{keys}");
    // Every system service runs, seen through `system-docker` as a user would. A service
    // the manager is restarting at that moment (a user engine whose dockerd gave up on
    // its containerd on a loaded host, say) counts once it is back: that is the
    // supervisor's job, and the console says why it restarted.
    let ps_all = "sudo system-docker ps --format '{{.Names}} {{.Status}}'";
    let all_up = |ps: &str| {
        SERVICES
            .iter()
            .all(|s| ps.lines().any(|l| l.starts_with(&format!("{s} Up"))))
    };
    let deadline = std::time::Instant::now() + BOOT;
    let ps = loop {
        let ps = ssh.check(ps_all, CMD).expect("system-docker ps");
        if all_up(&ps) || std::time::Instant::now() > deadline {
            break ps;
        }
        std::thread::sleep(Duration::from_secs(5));
    };
    if !all_up(&ps) {
        let log = ssh
            .run("sudo system-docker logs --tail 40 docker 2>&1", CMD)
            .map(|(_, out)| out)
            .unwrap_or_default();
        panic!("every service running within {BOOT:?}; now:\n{ps}\nthe user engine's log:\n{log}");
    }
    // The ntp container killed through the engine: the manager starts it again and says so.
    let from = vm.console.mark();
    ssh.check("sudo system-docker kill ntp", CMD)
        .expect("kill ntp");
    vm.console
        .wait(from, CMD, |t| {
            t.contains("service ntp: exited with code 137")
                .then_some(())
        })
        .expect("the exit is logged");
    vm.console
        .wait(from, CMD, |t| {
            t.contains("service ntp: started at").then_some(())
        })
        .expect("and the restart");
    let state = ssh
        .check(
            "sudo system-docker inspect -f '{{.State.Running}}' ntp",
            CMD,
        )
        .expect("inspect ntp");
    assert_eq!(state.trim(), "true");
    // logger in the console reaches the syslog service's /var/log/messages.
    ssh.check("logger corral-ssh-hello", CMD).expect("logger");
    ssh.check(
        "for i in $(seq 50); do grep -q corral-ssh-hello /var/log/messages && exit 0; sleep 0.2; done; exit 1",
        CMD,
    )
    .expect("the message is in /var/log/messages");
    check_corral_command(ssh);
    // The console has the docker CLI and the corral command.
    let v = ssh
        .check(
            "docker --version; test -x /usr/bin/corral && echo corral-cli",
            CMD,
        )
        .expect("tools");
    // The console's CLI is unstable's, matching the default user engine.
    let cli = corral_harness::locked_upstream("unstable", "docker-cli");
    assert!(
        v.contains(&format!("Docker version {cli}")) && v.contains("corral-cli"),
        "{v}"
    );
}

/// The `corral` command in the console, answered by the manager over its socket.
fn check_corral_command(ssh: &Ssh) {
    use corral_api::protocol::{Service, Version};
    let json = |command: &str| -> serde_json::Value {
        let out = ssh.check(command, CMD).expect(command);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{command}: {e}: {out}"))
    };
    let v: Version =
        serde_json::from_value(json("sudo corral os version --format json")).expect("version");
    assert_eq!(v.os, "0.1.0");
    assert_eq!(v.kernel, corral_harness::built_kernel(), "{v:?}");
    assert!(v.kernel.starts_with("6.12."), "Debian 13's kernel: {v:?}");
    let system = corral_harness::locked_upstream("trixie", "docker.io");
    assert!(v.system_engine.starts_with(&system), "{v:?}");
    let user = corral_harness::locked_upstream("unstable", "docker.io");
    assert!(
        v.user_engine
            .as_deref()
            .is_some_and(|u| u.starts_with(&user)),
        "the newest engine by default: {v:?}"
    );
    assert_eq!(
        v.user_engine_name,
        corral_harness::engine_name(&user),
        "named by its Docker version: {v:?}"
    );
    assert_eq!(
        (v.system_runtime.as_deref(), v.user_runtime.as_deref()),
        (Some("crun"), Some("crun")),
        "crun in both engines: {v:?}"
    );
    assert!(
        v.build_id
            .as_deref()
            .is_some_and(|b| b.len() == 12 && b.chars().all(|c| c.is_ascii_hexdigit())),
        "the root's build id: {v:?}"
    );
    // A live machine has no boot slots: an upgrade says so and points at install.
    let (code, out) = ssh
        .run(
            "sudo corral os upgrade --from http://127.0.0.1:9/ 2>&1",
            CMD,
        )
        .expect("os upgrade");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("without boot slots") && out.contains("corral install"),
        "{out}"
    );
    // The CLI is on the host too (PID 1's root, seen through the console's host pid
    // namespace).
    ssh.check("sudo test -x /proc/1/root/usr/bin/corral", CMD)
        .expect("corral on the host");
    let services = || -> Vec<Service> {
        serde_json::from_value(json("sudo corral service list --format json")).expect("list")
    };
    let listed = services();
    for name in SERVICES {
        let s = listed
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} listed"));
        assert_eq!(s.state, "running", "{s:?}");
        assert!(
            s.image.starts_with(&format!(
                "corral/{}",
                if name == "docker" { "engine" } else { name }
            )),
            "{s:?}"
        );
    }
    let table = ssh
        .check("sudo corral service ps", CMD)
        .expect("service ps");
    assert!(
        table.starts_with("NAME") && table.contains("\nntp "),
        "{table}"
    );
    // Stop: it stays stopped (the manager's watcher does not restart it); start again.
    let said = ssh
        .check("sudo corral service stop ntp", CMD)
        .expect("stop ntp");
    assert_eq!(said.trim(), "stopped ntp");
    std::thread::sleep(Duration::from_secs(5));
    let ntp = services()
        .into_iter()
        .find(|s| s.name == "ntp")
        .expect("ntp");
    assert_eq!(ntp.state, "exited", "still stopped: {ntp:?}");
    ssh.check("sudo corral service start ntp", CMD)
        .expect("start ntp");
    let ntp = services()
        .into_iter()
        .find(|s| s.name == "ntp")
        .expect("ntp");
    assert_eq!(ntp.state, "running", "{ntp:?}");
    // Exit codes: 1 for a name that is not a service, 2 when the socket is out of reach
    // (not root), each with what to do.
    let (code, out) = ssh
        .run("sudo corral service restart nope 2>&1", CMD)
        .expect("nope");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("there is no service \"nope\"") && out.contains("ntp"),
        "{out}"
    );
    let (code, out) = ssh.run("corral service list 2>&1", CMD).expect("as corral");
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("/run/corral/api.sock") && out.contains("sudo"),
        "{out}"
    );
    let (code, out) = ssh
        .run("corral service frobnicate 2>&1", CMD)
        .expect("bad command");
    assert_eq!(code, 1, "{out}");
    // Logs: at most the lines asked for; syslog's are its file (the logger line from
    // check_console_over_ssh is there).
    let logs = ssh
        .check("sudo corral service logs -n 3 console", CMD)
        .expect("logs");
    assert!(logs.lines().count() <= 3, "{logs}");
    let syslog = ssh
        .check("sudo corral service logs syslog", CMD)
        .expect("syslog's logs");
    assert!(syslog.contains("corral-ssh-hello"), "{syslog}");
    let last = ssh
        .check("sudo corral service logs -n 2 syslog", CMD)
        .expect("syslog's last lines");
    assert_eq!(last.lines().count(), 2, "{last}");
    // Follow: a line logged after the command started arrives while it runs.
    let (_, followed) = ssh
        .run(
            "(sleep 3; logger corral-follow-me) & timeout 12 sudo corral service logs -f -n 1 syslog",
            CMD,
        )
        .expect("logs -f");
    assert!(followed.contains("corral-follow-me"), "{followed}");
    // Users in group docker get the read-only commands through sudo, and only those.
    // (The console's accounts are fixed files and it has no adduser: one line each.)
    ssh.check(
        "sudo sh -c 'echo viewer:x:1200:233::/tmp:/bin/sh >> /etc/passwd && \
         echo viewer:*:19000:0:99999:7::: >> /etc/shadow'",
        CMD,
    )
    .expect("a user in group docker");
    let as_viewer = |command: &str| {
        ssh.run(&format!("sudo -u viewer sudo -n {command} 2>&1"), CMD)
            .expect(command)
    };
    let (code, out) = as_viewer("corral service list --format json");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"ntp\""), "{out}");
    let (code, out) = as_viewer("corral os version");
    assert_eq!(code, 0, "{out}");
    let (code, out) = as_viewer("corral service stop ntp");
    assert_ne!(code, 0, "not read-only: {out}");
    let (code, out) = as_viewer("corral config export");
    assert_ne!(code, 0, "the configuration holds secrets: {out}");
    // The boot report: PID 1's steps and the manager's, in time order, a critical path.
    let report: corral_api::BootReport =
        serde_json::from_value(json("sudo corral boot-report --format json")).expect("report");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "kernel",
        "system engine",
        "system images",
        "configuration",
        "service console",
        "sshd listening",
        "system engine: containerd",
        "system engine: dockerd API",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    // An engine's parts fill its step: containerd listening, then dockerd's API.
    let step = |name: &str| report.steps.iter().find(|s| s.name == name);
    for (engine, parts) in [
        (
            "system engine",
            ["system engine: containerd", "system engine: dockerd API"],
        ),
        (
            "user engine",
            ["user engine: containerd", "user engine: dockerd API"],
        ),
    ] {
        let Some(whole) = step(engine) else {
            assert_eq!(engine, "user engine", "{report:?}");
            continue;
        };
        let (c, a) = (
            step(parts[0]).unwrap_or_else(|| panic!("{} in {names:?}", parts[0])),
            step(parts[1]).unwrap_or_else(|| panic!("{} in {names:?}", parts[1])),
        );
        assert!(
            (c.start - whole.start).abs() < 0.01
                && c.end <= a.start + 0.01
                && (a.end - whole.end).abs() < 0.01,
            "{engine}: {whole:?} {c:?} {a:?}"
        );
    }
    assert!(
        report.steps.windows(2).all(|w| w[0].start <= w[1].start),
        "in time order: {report:?}"
    );
    assert!(report
        .steps
        .iter()
        .all(|s| s.end >= s.start && s.end < 600.0));
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.critical && s.name == "kernel"),
        "{report:?}"
    );
    let table = ssh
        .check("sudo corral boot-report", CMD)
        .expect("report table");
    assert!(
        table.starts_with("STEP") && table.contains("CRITICAL"),
        "{table}"
    );
    eprintln!("iso-bios: corral boot-report\n{table}");
    check_engine_switch(ssh);
    // Shell completions.
    let bash = ssh
        .check("corral completion bash", CMD)
        .expect("completion");
    assert!(
        bash.contains("boot-report"),
        "completion names the commands"
    );
}

#[test]
fn iso_boots_by_uefi_and_the_power_button_powers_off_cleanly() {
    let mut cfg = VmConfig::new(Boot::Iso(artifact("corral.iso")));
    cfg.firmware = Firmware::Uefi;
    // GRUB shows its menu for one second; 'd' is the debug entry's hotkey.
    let answers = vec![("Corral with a root shell".to_string(), "d".to_string())];
    let mut vm = Vm::start("iso-uefi", &cfg, &log_dir("iso-uefi"), answers).expect("start QEMU");
    let at = vm
        .wait_for("system engine ready", BOOT)
        .expect("system engine ready");
    eprintln!("iso-uefi: system engine ready {at:.1}s after QEMU started");
    vm.check("test -d /sys/firmware/efi", CMD)
        .expect("booted by UEFI");
    check_running_system(&mut vm);
    // The ACPI power button (what an EC2 stop sends): acpid asks PID 1 for a poweroff.
    // acpid came back with the engine restart above; press once it listens.
    vm.check(
        "for i in $(seq 100); do p=$(pidof acpid) && ls -l /proc/$p/fd | grep -q /dev/input && exit 0; \
         sleep 0.2; done; exit 1",
        CMD,
    )
    .expect("acpid listens on the input devices");
    vm.monitor("system_powerdown")
        .expect("press the power button");
    check_clean_poweroff(&mut vm);
    assert!(
        vm.console
            .text()
            .contains("corral-init: SIGUSR2 received: powering off"),
        "acpid's poweroff reached PID 1"
    );
}

#[test]
fn the_hybrid_iso_written_to_a_disk_boots() {
    // `dd if=corral.iso of=/dev/sdX` gives this disk: isohdpfx's MBR starts isolinux.
    let dir = log_dir("iso-as-disk");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let disk = dir.join("disk.img");
    std::fs::copy(artifact("corral.iso"), &disk).expect("copy the ISO to a disk image");
    let cfg = VmConfig::new(Boot::Disk(disk));
    let answers = vec![("boot:".to_string(), "debug\n".to_string())];
    let mut vm = Vm::start("iso-as-disk", &cfg, &dir, answers).expect("start QEMU");
    vm.wait_for("system engine ready", BOOT)
        .expect("boots from the disk");
    vm.check("corral-manager status", CMD)
        .expect("engine answers");
    vm.shell.send("poweroff\n").expect("send poweroff");
    vm.wait_exit(Duration::from_secs(120))
        .expect("QEMU exits after poweroff");
}

#[test]
fn kernel_options_apply_and_bad_ones_do_not_stop_the_boot() {
    let boot = Boot::Kernel {
        kernel: artifact("vmlinuz"),
        initrd: artifact("initrd-pxe"),
        cmdline: "console=ttyS0,115200n8 corral.debug_shell=ttyS1 corral.hostname=e2e-node \
                  corral.cgroup=v9 corral.no_such_option=1 corral.modules=dummy"
            .into(),
    };
    let cfg = VmConfig::new(boot);
    let dir = log_dir("kernel-options");
    let mut vm = Vm::start("kernel-options", &cfg, &dir, Vec::new()).expect("start QEMU");
    vm.wait_for("system engine ready", BOOT)
        .expect("boots despite bad options");
    assert_eq!(
        vm.check("hostname", CMD).expect("hostname").trim(),
        "e2e-node"
    );
    vm.check("test -d /sys/module/dummy", CMD)
        .expect("corral.modules loaded dummy");
    let console = vm.console.text();
    assert!(
        console.contains("ignoring kernel option corral.cgroup=\"v9\": use v1 or v2"),
        "warning on the console"
    );
    vm.check("grep -q cgroup2 /proc/self/mounts", CMD)
        .expect("default cgroup2 kept");
    vm.shell.send("reboot\n").expect("send reboot");
    // -no-reboot turns the guest's reboot into QEMU's exit.
    vm.wait_exit(Duration::from_secs(120))
        .expect("QEMU exits after reboot");
    assert!(vm.console.text().contains("root read-only; rebooting"));
}

#[test]
fn a_boot_that_cannot_go_on_opens_a_recovery_shell_instead_of_panicking() {
    // dist/initrd carries no root image and reads it from the ISO or the disk slot it
    // booted from; given to QEMU alone, with no medium, stage one must fail and say why.
    let dir = log_dir("recovery");
    let cfg = VmConfig::new(Boot::Kernel {
        kernel: artifact("vmlinuz"),
        initrd: artifact("initrd"),
        cmdline: "console=ttyS0,115200n8".into(),
    });
    let vm = Vm::start("recovery", &cfg, &dir, Vec::new()).expect("start QEMU");
    vm.wait_for(
        "no boot medium labelled CORRAL with the root image: no device carries it after 30s",
        BOOT,
    )
    .expect("the reason is on the console");
    vm.wait_for("opening a recovery shell", CMD)
        .expect("recovery shell announced");
    std::thread::sleep(Duration::from_secs(1));
    vm.console
        .send("echo recovery-$((40+2))\n")
        .expect("type in the shell");
    vm.wait_for("recovery-42", CMD)
        .expect("the recovery shell runs commands");
    assert!(!vm.console.text().contains("Kernel panic"), "no panic");
}
