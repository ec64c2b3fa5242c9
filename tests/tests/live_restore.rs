//! End-to-end: the user engine with `live_restore: true` (RancherOS's
//! `rancher.docker.live_restore`), one boot. A dockerd killed by hand is started again
//! inside the engine's container, which stays up, and finds its workload still running
//! (the same process); `corral service restart docker` stops the workload cleanly through
//! the engine's API before the engine's container ends (ending it killed the workload
//! with exit 255 before); at poweroff the workloads are stopped through the API too
//! (docs/user-engine.md, "Live restore").

use corral_harness::{
    artifact, free_port, log_dir, nocloud_iso, preload_bootcmd, test_image, Boot, Drive, KeyPair,
    Ssh, Vm, VmConfig,
};
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(300);
const CMD: Duration = Duration::from_secs(120);
const BUSYBOX: &str = "corral/busybox:0.1.0";
/// What the manager logs when it stops the workloads through the API (live-restore).
const API_STOP: &str = "user engine (live-restore): 1 containers stopped in";
/// What corral-engine logs when it starts an unasked-exited dockerd again.
const AGAIN: &str = "it is started again and the containers keep running";

/// The pid of the user engine's dockerd: the child named dockerd of the `docker`
/// service's main process (`corral-engine`), read from /proc (the host's PID namespace).
fn dockerd_pid(ssh: &Ssh) -> String {
    let engine = ssh
        .check("sudo system-docker inspect -f '{{.State.Pid}}' docker", CMD)
        .expect("the engine's main process");
    let script = format!(
        "for s in /proc/[0-9]*/stat; do read -r p c st pp rest < $s 2>/dev/null || continue; \
         [ \"$c\" = \"(dockerd)\" ] && [ \"$pp\" = {} ] && echo $p; done; true",
        engine.trim()
    );
    let pid = ssh
        .eventually(&format!("sh -c '{script}' | grep ."), CMD, CMD)
        .expect("dockerd under corral-engine");
    pid.trim().to_string()
}

#[test]
fn live_restore_keeps_workloads_through_a_dockerd_crash_and_stops_them_cleanly_with_the_engine() {
    let dir = log_dir("live-restore");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-live").expect("key pair");
    let seed = dir.join("cidata");
    std::fs::create_dir_all(&seed).expect("seed dir");
    std::fs::copy(test_image("busybox"), seed.join("busybox.tar")).expect("copy the image");
    let user_data = format!(
        "#cloud-config\n\
         ssh_authorized_keys:\n  - {key}\n\
         {bootcmd}\
         rancher:\n\
         \x20 docker:\n\
         \x20   live_restore: true\n",
        bootcmd = preload_bootcmd("busybox.tar"),
        key = key.public
    );
    let iso = nocloud_iso(&dir, user_data.as_bytes(), "instance-id: live-1\n").expect("seed");
    let mut cfg = VmConfig::new(Boot::Kernel {
        kernel: artifact("vmlinuz"),
        initrd: artifact("initrd-pxe"),
        cmdline: "console=ttyS0,115200n8 corral.debug_shell=ttyS1".into(),
    });
    let port = free_port().expect("port");
    cfg.ssh_port = Some(port);
    cfg.drives.push(Drive {
        file: iso,
        kind: "cdrom",
    });
    let mut vm = Vm::start("live-restore", &cfg, &dir, Vec::new()).expect("qemu starts");
    let ssh = Ssh {
        port,
        user: "corral".into(),
        key: key.private.clone(),
    };
    ssh.wait_ready(BOOT).expect("sshd accepts the seed's key");
    vm.wait_for("user engine: preloaded", BOOT)
        .expect("the engine answers and has the image");
    let live = ssh
        .check("docker info -f '{{.LiveRestoreEnabled}}'", CMD)
        .expect("docker info");
    assert_eq!(live.trim(), "true", "live_restore reaches dockerd");

    // A workload that exits 0 on SIGTERM (and only then), so its exit code tells a clean
    // stop from a kill.
    ssh.check(
        &format!(
            "docker run -d --name lr --restart unless-stopped {BUSYBOX} \
             sh -c 'trap \"exit 0\" TERM; while true; do sleep 1; done'"
        ),
        CMD,
    )
    .expect("docker run");
    let workload = ssh
        .check("docker inspect -f '{{.State.Pid}}' lr", CMD)
        .expect("its pid");
    let engine_started = ssh
        .check(
            "sudo system-docker inspect -f '{{.State.StartedAt}}' docker",
            CMD,
        )
        .expect("the engine's container");

    // dockerd killed by hand: started again in place, the workload untouched.
    let old = dockerd_pid(&ssh);
    ssh.check(&format!("sudo kill -9 {old}"), CMD)
        .expect("kill dockerd");
    let after = ssh
        .eventually(
            "docker inspect -f '{{.State.Pid}} {{.State.Running}}' lr",
            BOOT,
            Duration::from_secs(30),
        )
        .expect("the engine answers again");
    assert_eq!(
        after.trim(),
        format!("{} true", workload.trim()),
        "the same process still runs"
    );
    let new = dockerd_pid(&ssh);
    assert_ne!(old, new, "a new dockerd");
    let same = ssh
        .check(
            "sudo system-docker inspect -f '{{.State.StartedAt}}' docker",
            CMD,
        )
        .expect("the engine's container");
    assert_eq!(
        same, engine_started,
        "the engine's container was not restarted"
    );
    let logs = ssh
        .check("sudo corral service logs -n 2000 docker", CMD)
        .expect("service logs");
    assert!(
        logs.contains(AGAIN),
        "corral-engine says what it did:\n{logs}"
    );

    // The engine's service restarted: its container ends, so the workload is stopped
    // through the API first, cleanly (exit 0 from its trap, not 255).
    ssh.check("sudo corral service restart docker", BOOT)
        .expect("service restart docker");
    let state = ssh
        .eventually(
            "docker inspect -f '{{.State.Running}} {{.State.ExitCode}}' lr",
            BOOT,
            Duration::from_secs(30),
        )
        .expect("the engine answers after its restart");
    assert_eq!(
        state.trim(),
        "false 0",
        "stopped by its SIGTERM, not killed"
    );
    assert!(vm.console.text().contains(API_STOP), "the manager says so");

    // Poweroff: the workload is stopped through the API before the engine ends.
    ssh.check("docker start lr", CMD).expect("docker start");
    let _ = ssh.run("sudo poweroff", CMD);
    vm.wait_exit(BOOT).expect("QEMU exits at poweroff");
    let console = vm.console.text();
    assert_eq!(
        console.matches(API_STOP).count(),
        2,
        "stopped through the API at poweroff too:\n{console}"
    );
}
