//! Faults that take several boots of one disk (`make faults`, not `make test`: seven boots
//! of the disk image under TCG do not fit beside the rest; docs/testing.md). One 2 GiB
//! disk, the way EC2 boots `corral.img`, power cut four ways, then a disk too small:
//!
//! 1. QEMU killed on the first boot as soon as the manager says it seeds the system
//!    image store onto the state partition: the next boot has a whole store (seeded
//!    again when the cut came before the seed was put in place, which the console
//!    shows) and every service runs.
//! 2. QEMU killed while `corral config set` runs over and over: the next boot has one of
//!    the values that were set (never a broken file), and its services run.
//! 3. The state partition filled by a workload (a container writing into the user's
//!    home until the disk is full): `corral config set` still works in the blocks ext4
//!    keeps for root; once root has taken those too (as the user engine can), it
//!    fails and says why, the saved configuration is the same byte for byte, and after
//!    a power cut with the partition still full the machine boots to ssh with its system
//!    services (the system engine, which cannot start on the full partition, from RAM
//!    that boot); once the files are gone the user engine comes up and `config set`
//!    works again, and the next boot runs the system engine from the disk again.
//! 4. The system store's image index damaged, then a power cut: the system engine's
//!    data root is moved aside after three failed starts, seeded again, and every
//!    service runs.
//! 5. The image on a disk of its own size (a state partition of about 350 MB): the
//!    system store's layers are linked from the root image, so it fits, and the system
//!    engine runs from the disk; every service runs.

use corral_harness::imds::{FakeImds, Instance};
use corral_harness::{
    artifact, free_port, log_dir, test_image, Boot, Firmware, KeyPair, Ssh, Vm, VmConfig,
};
use std::path::Path;
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(600);
const CMD: Duration = Duration::from_secs(120);
const BUSYBOX: &str = "corral/busybox:0.1.0";
/// Fills the filesystem of `dir` with files named `<prefix>*`: large writes, then, once
/// what the first freed at its sync is taken, one-byte files until not one more block
/// is left to the writer.
fn fill(dir: &str, prefix: &str) -> String {
    format!(
        "dd if=/dev/zero of={dir}/{prefix}big bs=1M; sync; \
         dd if=/dev/zero of={dir}/{prefix}rest bs=4k; sync; \
         i=0; while echo x > {dir}/{prefix}$i; do i=$((i+1)); done 2>/dev/null; sync"
    )
}
const SERVICES: [&str; 6] = ["network", "syslog", "ntp", "acpid", "console", "docker"];

/// Powers `disk` on (a new QEMU: the last one was killed, a power cut) and waits for
/// ssh as `corral` with `key`. Its logs go to `dir/step`.
fn power_on(disk: &Path, imds: &FakeImds, dir: &Path, step: &str, key: &Path) -> (Vm, Ssh) {
    let (cfg, port) = machine(disk, imds);
    let vm = Vm::start(&format!("faults-{step}"), &cfg, &dir.join(step), Vec::new()).expect("QEMU");
    let ssh = Ssh {
        port,
        user: "corral".into(),
        key: key.to_path_buf(),
    };
    ssh.wait_ready(BOOT)
        .unwrap_or_else(|e| panic!("ssh at boot {step}: {e:?}"));
    (vm, ssh)
}

/// The host's mounts, through PID 1 (the console shares the host's PIDs).
fn host_mounts(ssh: &Ssh) -> String {
    ssh.check("sudo cat /proc/1/mounts", CMD)
        .expect("the host's mounts")
}

fn machine(disk: &Path, imds: &FakeImds) -> (VmConfig, u16) {
    let mut cfg = VmConfig::new(Boot::Nvme(disk.to_path_buf()));
    cfg.firmware = Firmware::Bios;
    let port = free_port().expect("port");
    cfg.ssh_port = Some(port);
    cfg.metadata_port = Some(imds.port);
    cfg.smbios_vendor = Some("Amazon EC2".into());
    (cfg, port)
}

/// `services` up in the system engine.
fn system_services_run(ssh: &Ssh, boot: &str, services: &[&str]) {
    let wanted = services
        .iter()
        .map(|s| format!("echo \"$ps\" | grep -q '^{s} Up'"))
        .collect::<Vec<_>>()
        .join(" && ");
    let ps = ssh
        .eventually(
            &format!(
                "ps=$(sudo system-docker ps --format '{{{{.Names}}}} {{{{.Status}}}}') && \
                 echo \"$ps\" && {wanted}"
            ),
            BOOT,
            CMD,
        )
        .unwrap_or_else(|e| panic!("{boot}: {services:?} up: {e}"));
    for s in services {
        assert!(
            ps.lines().any(|l| l.starts_with(&format!("{s} Up"))),
            "{boot}: {s} in\n{ps}"
        );
    }
}

/// Every system service up, and the user engine answering.
fn services_run(ssh: &Ssh, boot: &str) {
    system_services_run(ssh, boot, &SERVICES);
    ssh.eventually("docker info --format '{{.ServerVersion}}'", BOOT, CMD)
        .unwrap_or_else(|e| panic!("{boot}: the user engine answers: {e}"));
}

#[test]
#[ignore = "several boots of one disk: `make faults` (docs/testing.md)"]
fn power_cuts_and_a_full_state_partition_never_lose_the_machine() {
    let dir = log_dir("faults");
    std::fs::create_dir_all(&dir).expect("log dir");
    let disk = dir.join("disk.img");
    // 2 GiB: the state partition grows to about 1.3 GiB at the first boot.
    corral_harness::disk_from_image(&artifact("corral.img"), &disk, 2 << 30).expect("disk");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-faults").expect("key pair");
    let imds = FakeImds::start(Instance {
        instance_id: "i-0faul7500000000001".into(),
        local_hostname: "faults".into(),
        region: "us-east-1".into(),
        public_keys: vec![("e2e".into(), key.public.clone())],
        user_data: None,
        require_token: true,
        v1_only: false,
    })
    .expect("fake IMDS");

    // 1. Power cut during the first boot's seed. Its layers are linked, so it writes
    // only a few MB: the cut comes as soon as the console says it began, and may still
    // come after the seed was put in place. Either way the next boot has a whole store;
    // each point a cut can stop a seed at is dockerd/src/seed.rs'
    // `a_seed_cut_short_is_done_again_not_trusted`.
    let (cfg, _) = machine(&disk, &imds);
    let vm = Vm::start("faults-seed", &cfg, &dir.join("1-seed"), Vec::new()).expect("QEMU");
    const SEEDING: &str = "seeding the image store at '/var/lib/system-docker'";
    vm.wait_for(SEEDING, BOOT)
        .expect("the manager seeds the system store");
    let first = vm.console.text();
    drop(vm);
    let seen_whole = first.contains("image store seeded");

    let (vm, ssh) = power_on(&disk, &imds, &dir, "2-after-seed", &key.private);
    let seeded_again = vm.console.text().contains(SEEDING);
    eprintln!(
        "faults: the power cut came {} the seed was put in place (seen whole before the \
         cut: {seen_whole}; seeded again at the next boot: {seeded_again})",
        if seeded_again { "before" } else { "after" }
    );
    assert!(
        !(seen_whole && seeded_again),
        "a store put in place whole is kept, not seeded again"
    );
    services_run(&ssh, "after a cut seed");
    let leftovers = ssh
        .check("sudo ls -a /var/lib/system-docker 2>/dev/null; true", CMD)
        .expect("ls");
    assert!(!leftovers.contains(".seeding"), "{leftovers}");

    // 2. Power cut while the configuration is written again and again.
    let saved = ssh
        .check("sudo corral config set hostname cut-a", CMD)
        .expect("config set");
    eprintln!("faults: {}", saved.trim());
    ssh.check(
        "sudo setsid sh -c 'while :; do corral config set hostname cut-b; \
         corral config set hostname cut-a; done' </dev/null >/dev/null 2>&1 &",
        CMD,
    )
    .expect("a loop of config set");
    std::thread::sleep(Duration::from_secs(8));
    drop(vm);

    let (vm, ssh) = power_on(&disk, &imds, &dir, "3-after-set", &key.private);
    let console = vm.console.text();
    assert!(
        !console.contains("rejected whole") && !console.contains("does not parse"),
        "the saved configuration is whole"
    );
    let name = ssh.check("hostname", CMD).expect("hostname");
    assert!(
        ["cut-a", "cut-b"].contains(&name.trim()),
        "one of the values set: {name}"
    );
    let set_value = ssh
        .check("sudo corral config get hostname", CMD)
        .expect("config get");
    assert!(set_value.contains("cut-"), "{set_value}");
    services_run(&ssh, "after a cut config set");

    // 3. A workload fills the state partition: a container writing into a directory of
    // the user's home it was given (`/home` is on the state partition). Without
    // CAP_SYS_RESOURCE (not in Docker's default set) it cannot take the blocks ext4
    // keeps for root (5%): the OS's own writes still work.
    ssh.run_with_input("docker load", Some(&test_image("busybox")), CMD)
        .expect("docker load");
    let (_, filled) = ssh
        .run(
            &format!(
                "mkdir -p /home/corral/fill && docker run --rm -v /home/corral/fill:/fill \
                 {BUSYBOX} sh -c '{}'; df -h /home",
                fill("/fill", "user")
            ),
            Duration::from_secs(600),
        )
        .expect("the workload runs");
    eprintln!("faults: a workload filled the state partition:\n{filled}");
    assert!(filled.contains("100%"), "{filled}");
    ssh.check(
        "sudo corral config set corral.environment.FAULTS reserve",
        CMD,
    )
    .expect("config set works in the blocks ext4 keeps for root");
    // Root takes those too (as the user engine can, pulling images).
    let conf = "sudo sh -c 'cat /var/lib/corral/conf/*.yml' | sha256sum";
    let before = ssh.check(conf, CMD).expect("saved configuration");
    let (_, filled) = ssh
        .run(
            &format!(
                "sudo sh -c '{}'; df /home",
                fill("/home/corral/fill", "root")
            ),
            Duration::from_secs(600),
        )
        .expect("root fills the rest");
    eprintln!("faults: root filled the rest:\n{filled}");
    let (code, said) = ssh
        .run("sudo corral config set hostname full 2>&1", CMD)
        .expect("config set on a full disk");
    eprintln!(
        "faults: config set on a full disk (exit {code}): {}",
        said.trim()
    );
    assert_ne!(code, 0, "config set cannot succeed on a full disk: {said}");
    assert!(
        said.contains("No space left") || said.contains("full"),
        "the message says why: {said}"
    );
    assert_eq!(
        ssh.check(conf, CMD).expect("saved configuration"),
        before,
        "the saved configuration is untouched"
    );
    assert!(
        !ssh.check("sudo ls -a /var/lib/corral/conf", CMD)
            .expect("the configuration's folder")
            .contains(".tmp"),
        "no temporary file left by the failed write"
    );
    // And the power cut with the partition still full.
    drop(vm);

    let started = Instant::now();
    let (vm, ssh) = power_on(&disk, &imds, &dir, "4-full", &key.private);
    eprintln!(
        "faults: a full state partition boots to ssh in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let name = ssh.check("hostname", CMD).expect("hostname");
    assert!(name.trim().starts_with("cut-"), "{name}");
    // The system services run (the system engine from RAM, says the console). The user
    // engine cannot start on a full data root; it comes up once there is room.
    let all_but_docker: Vec<&str> = SERVICES.into_iter().filter(|s| *s != "docker").collect();
    system_services_run(&ssh, "with a full state partition", &all_but_docker);
    eprintln!(
        "faults: with the state partition full:\n{}",
        vm.console
            .text()
            .lines()
            .filter(|l| l.contains("No space") || l.contains("from RAM"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    ssh.check("sudo rm -r /home/corral/fill", CMD)
        .expect("the workload's files removed");
    services_run(&ssh, "once there is room again");
    ssh.check("sudo corral config set hostname freed", CMD)
        .expect("config set works again once there is room");
    // The system engine could not start on the full partition: it runs from RAM for
    // the rest of this boot, and from the disk again at the next.
    assert!(
        vm.console.text().contains("runs from RAM this boot"),
        "the system engine on a full partition runs from RAM"
    );
    drop(vm);
    let (vm, ssh) = power_on(&disk, &imds, &dir, "5-freed", &key.private);
    services_run(&ssh, "the boot after the room was freed");
    let mounts = host_mounts(&ssh);
    assert!(
        !mounts
            .lines()
            .any(|l| l.starts_with("tmpfs /var/lib/system-docker ")),
        "the system store back on the disk:\n{mounts}"
    );

    // 4. The system store damaged (its image index, which dockerd cannot start
    // without), then a power cut: the next boot's system engine fails three starts, its
    // data root's contents are moved aside, the store is seeded again (or runs from RAM
    // if the partition cannot hold a second copy beside the one moved aside), and every
    // service runs. The file as the system engine sees it, through its root in /proc
    // (the console shares the host's PIDs and /run; a disk boot has no debug shell).
    let index = "/proc/$(cat /run/system-docker.pid)/root/var/lib/system-docker/image/overlay2/repositories.json";
    let damaged = ssh
        .check(
            &format!("sudo sh -c 'printf {{ > {index} && sync && cat {index}'"),
            CMD,
        )
        .expect("the store damaged");
    assert_eq!(damaged, "{", "the index damaged");
    drop(vm);
    let (vm, ssh) = power_on(&disk, &imds, &dir, "6-corrupt", &key.private);
    services_run(&ssh, "after a damaged store");
    assert!(
        vm.console.text().contains("contents were moved to"),
        "the console says the damaged store was moved aside"
    );
    let kept = ssh
        .check(
            "sudo sh -c 'ls -a /proc/$(cat /run/system-docker.pid)/root/var/lib/system-docker'",
            CMD,
        )
        .expect("the system engine's data root");
    assert!(
        kept.contains(".corrupt-"),
        "the damaged store kept aside: {kept}"
    );
    eprintln!(
        "faults: a damaged system store:\n{}",
        vm.console
            .text()
            .lines()
            .filter(|l| l.contains("moved to") || l.contains("seeded") || l.contains("from RAM"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(vm);

    // 5. The image on a disk of its own size (EC2's smallest volume for it): a state
    // partition of about 350 MB, which could not hold a copy of the system store (about
    // 560 MB). Its layers are linked from the root image, so the store fits and the
    // system engine runs from the disk; the services run.
    let small = dir.join("small.img");
    let image = artifact("corral.img");
    let size = std::fs::metadata(&image).expect("corral.img").len();
    corral_harness::disk_from_image(&image, &small, size).expect("small disk");
    let (vm, ssh) = power_on(&small, &imds, &dir, "7-small", &key.private);
    services_run(&ssh, "on a small disk");
    let console = vm.console.text();
    assert!(
        console.contains("image store seeded: layers linked from the root image"),
        "the store linked on the small disk"
    );
    assert!(
        !console.contains("runs from RAM this boot"),
        "the system engine runs from the disk"
    );
    let mounts = host_mounts(&ssh);
    assert!(
        !mounts
            .lines()
            .any(|l| l.starts_with("tmpfs /var/lib/system-docker ")),
        "the system store on the disk:\n{mounts}"
    );
    let (_, df) = ssh.run("df -h /var/lib/corral", CMD).expect("df");
    eprintln!("faults: the small disk's state partition with the system store:\n{df}");
    drop(vm);
}
