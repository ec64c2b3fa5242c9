//! End-to-end: `corral.img` the way EC2 boots it, and the state partition. One machine,
//! two boots of the same NVMe disk: first with SeaBIOS and a fake IMDSv2 (ssh key and
//! hostname from the metadata, the state partition grown to fill the disk, data written
//! to every persisted place), then with OVMF (everything is still there, the ssh host key
//! unchanged). A kernel boot checks `corral.state.autoformat`: a blank disk is formatted,
//! a disk with data never is. The ISO with a blank disk runs `corral install` (after two
//! refusals), and the disk then boots alone with the installed cloud-config, by BIOS and
//! by UEFI.

use corral_harness::imds::{FakeImds, Instance};
use corral_harness::{
    artifact, free_port, log_dir, test_image, Boot, Drive, Firmware, KeyPair, Ssh, Vm, VmConfig,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(300);
const CMD: Duration = Duration::from_secs(120);
const BUSYBOX: &str = "corral/busybox:0.1.0";
/// The disk the image is written to: bigger than the image, as an EBS volume would be.
const DISK_GIB: u64 = 3;
const HOSTNAME: &str = "ip-10-0-0-9.ec2.internal";

/// A sparse copy of `corral.img`, grown to `DISK_GIB`.
fn disk_from_image(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("log dir");
    let disk = dir.join("disk.img");
    corral_harness::disk_from_image(&artifact("corral.img"), &disk, DISK_GIB << 30)
        .expect("corral.img copied to a bigger disk");
    disk
}

fn ec2_machine(disk: &Path, firmware: Firmware, imds: &FakeImds) -> (VmConfig, u16) {
    let mut cfg = VmConfig::new(Boot::Nvme(disk.to_path_buf()));
    cfg.firmware = firmware;
    let port = free_port().expect("port");
    cfg.ssh_port = Some(port);
    cfg.metadata_port = Some(imds.port);
    cfg.smbios_vendor = Some("Amazon EC2".into());
    (cfg, port)
}

fn host_key(ssh: &Ssh) -> String {
    ssh.check("sudo cat /var/lib/corral/ssh/ssh_host_ed25519_key.pub", CMD)
        .expect("host key")
        .trim()
        .to_string()
}

#[test]
fn the_disk_image_boots_from_nvme_with_bios_and_uefi_and_keeps_its_state() {
    let dir = log_dir("disk");
    let disk = disk_from_image(&dir);
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-disk").expect("key pair");
    let imds = FakeImds::start(Instance {
        instance_id: "i-0fedcba9876543210".into(),
        local_hostname: HOSTNAME.into(),
        region: "us-east-1".into(),
        public_keys: vec![("e2e".into(), key.public.clone())],
        user_data: None,
        require_token: true,
        v1_only: false,
    })
    .expect("fake IMDS");

    // First boot: SeaBIOS, as EC2's legacy-BIOS instance types boot.
    let (cfg, port) = ec2_machine(&disk, Firmware::Bios, &imds);
    let mut vm = Vm::start("disk-bios", &cfg, &dir.join("bios"), Vec::new()).expect("QEMU");
    let ssh = Ssh {
        port,
        user: "corral".into(),
        key: key.private.clone(),
    };
    let ready = ssh
        .wait_ready(BOOT)
        .expect("sshd accepts the key from the metadata");
    eprintln!(
        "disk-bios (first boot, grows the state partition): sshd accepted the key {:.1}s after QEMU started",
        ready.duration_since(vm.started).as_secs_f64()
    );
    assert_eq!(
        ssh.check("hostname", CMD).expect("hostname").trim(),
        HOSTNAME
    );
    let console = vm.console.text();
    assert!(
        console.contains("state: /dev/nvme0n1p5 mounted on /run/corral/state (partition grown"),
        "the state partition is found and grown at first boot"
    );
    // The partition reaches the disk's end, and the filesystem grew with it.
    let sectors: u64 = ssh
        .check("cat /sys/class/block/nvme0n1p5/size", CMD)
        .expect("partition size")
        .trim()
        .parse()
        .expect("a number");
    let image_end_mib = 673;
    assert!(
        sectors * 512 >= ((DISK_GIB << 10) - image_end_mib - 1) << 20,
        "state partition: {sectors} sectors"
    );
    let fs = ssh
        .check("stat -f -c '%b %S' /home/corral", CMD)
        .expect("statfs");
    let (blocks, size) = fs.trim().split_once(' ').expect("two numbers");
    let fs_bytes = blocks.parse::<u64>().unwrap() * size.parse::<u64>().unwrap();
    assert!(
        fs_bytes > 2 << 30,
        "the state filesystem has {fs_bytes} bytes"
    );

    // Boot slot A, good, with its own command line (boot.env); slot B empty.
    let cmdline = ssh.check("cat /proc/cmdline", CMD).expect("cmdline");
    assert!(
        cmdline.contains("panic=10") && cmdline.contains("corral.slot=A"),
        "{cmdline}"
    );
    assert!(!cmdline.contains("corral.trial"), "{cmdline}");
    // The root image is read from slot A's filesystem (partition 3), read-only.
    let medium = ssh
        .check("grep ' /run/corral/medium ' /proc/self/mounts", CMD)
        .expect("the medium is mounted");
    assert!(medium.contains("p3 /run/corral/medium ext4 ro"), "{medium}");
    let status = ssh
        .check("sudo corral os status --format json", CMD)
        .expect("os status");
    let status: serde_json::Value =
        serde_json::from_str(&status).unwrap_or_else(|e| panic!("os status json: {e}\n{status}"));
    let slots = status["slots"].as_array().expect("slots");
    assert_eq!(
        (&slots[0]["slot"], &slots[0]["state"], &slots[0]["running"]),
        (&"A".into(), &"good".into(), &true.into()),
        "{status}"
    );
    assert_eq!(slots[0]["version"], "0.1.0", "{status}");
    assert_eq!(
        (&slots[1]["slot"], &slots[1]["state"]),
        (&"B".into(), &"empty".into()),
        "{status}"
    );

    // Something in every kind of persisted place.
    ssh.check("echo kept > /home/corral/persist.txt", CMD)
        .expect("write to home");
    ssh.eventually("docker info --format '{{.ServerVersion}}'", BOOT, CMD)
        .expect("the user engine answers");
    ssh.run_with_input("docker load", Some(&test_image("busybox")), CMD)
        .expect("docker load");
    ssh.check(
        &format!("docker run --rm -v keep:/data {BUSYBOX} sh -c 'echo volume-data > /data/f'"),
        CMD,
    )
    .expect("a named volume written");
    ssh.check(&format!("docker create --name keeper {BUSYBOX} true"), CMD)
        .expect("a container created");
    // Running with `unless-stopped` through the engine switch and the reboot: neither
    // is a `docker stop`, so it comes back each time (docs/user-engine.md, "Shutdown").
    ssh.check(
        &format!("docker run -d --name unless --restart unless-stopped {BUSYBOX} sleep 100000"),
        CMD,
    )
    .expect("an unless-stopped container");
    // Debian 13's engine from now on: saved on the state partition, so the next boot
    // starts it, over the data the newest engine made.
    let trixie = corral_harness::locked_upstream("trixie", "docker.io");
    let newest = corral_harness::locked_upstream("unstable", "docker.io");
    let old_engine = corral_harness::engine_name(&trixie).expect("a name");
    let new_engine = corral_harness::engine_name(&newest).expect("a name");
    ssh.check(
        &format!("sudo corral engine switch {old_engine}"),
        Duration::from_secs(300),
    )
    .expect("switch to Debian 13's engine");
    check_switched_engine(&ssh, &old_engine, &trixie);
    let key_before = host_key(&ssh);
    change_config_and_services(&ssh);
    // `corral reboot`: the clean shutdown, then the reset (QEMU runs with -no-reboot, so
    // it exits; the next boot is started below with other firmware).
    let _ = ssh.run("sudo corral reboot", CMD);
    vm.wait_exit(Duration::from_secs(180))
        .expect("QEMU exits at the reboot");
    let console = vm.console.text();
    for line in ["services ended in", "root read-only; rebooting"] {
        assert!(console.contains(line), "{line:?} on the console at reboot");
    }

    // Second boot of the same disk: OVMF, as EC2's UEFI instance types boot.
    let (cfg, port) = ec2_machine(&disk, Firmware::Uefi, &imds);
    let mut vm = Vm::start("disk-uefi", &cfg, &dir.join("uefi"), Vec::new()).expect("QEMU");
    let ssh = Ssh { port, ..ssh };
    let ready = ssh.wait_ready(BOOT).expect("sshd after the UEFI boot");
    eprintln!(
        "disk-uefi (second boot): sshd accepted the key {:.1}s after QEMU started",
        ready.duration_since(vm.started).as_secs_f64()
    );
    let console = vm.console.text();
    assert!(
        console.contains("state: /dev/nvme0n1p5 mounted on /run/corral/state\n")
            || console.contains("state: /dev/nvme0n1p5 mounted on /run/corral/state\r\n"),
        "mounted, not grown again"
    );
    assert_eq!(host_key(&ssh), key_before, "the ssh host key is kept");
    assert_eq!(
        ssh.check("cat /home/corral/persist.txt", CMD)
            .expect("home")
            .trim(),
        "kept"
    );
    check_config_and_services_kept(&ssh);
    let version = ssh
        .eventually("docker info --format '{{.ServerVersion}}'", BOOT, CMD)
        .expect("the user engine answers");
    assert_eq!(
        corral_harness::upstream(version.trim()),
        trixie,
        "the switched engine after the reboot"
    );
    ssh.check(&format!("docker image inspect {BUSYBOX} >/dev/null"), CMD)
        .expect("the image is still in the user engine");
    let unless = ssh
        .eventually(
            "docker ps --filter name=^unless$ --format '{{.Status}}' | grep '^Up'",
            CMD,
            CMD,
        )
        .expect("the unless-stopped container runs again after the reboot");
    assert!(unless.starts_with("Up"), "{unless}");
    assert_eq!(
        ssh.check(
            &format!("docker run --rm -v keep:/data {BUSYBOX} cat /data/f"),
            CMD
        )
        .expect("the volume")
        .trim(),
        "volume-data"
    );
    assert_eq!(
        ssh.check("docker inspect -f '{{.Name}}' keeper", CMD)
            .expect("the container")
            .trim(),
        "/keeper"
    );
    // And back to the newest, which still has it all.
    ssh.check(
        &format!("sudo corral engine switch {new_engine}"),
        Duration::from_secs(300),
    )
    .expect("switch back to the newest engine");
    let back = ssh
        .check(
            &format!(
                "docker info --format '{{{{.ServerVersion}}}}' && docker run --rm -v keep:/data {BUSYBOX} cat /data/f"
            ),
            CMD,
        )
        .expect("the newest engine with the data");
    let (version, data) = back.trim().split_once('\n').expect("two lines");
    assert_eq!(
        (corral_harness::upstream(version), data),
        (newest.as_str(), "volume-data")
    );
    let _ = ssh.run("sudo poweroff", CMD);
    vm.wait_exit(Duration::from_secs(180))
        .expect("QEMU exits after poweroff");
}

/// The running services' names and states, from `corral service list --format json`.
/// After `corral engine switch` to Debian 13's engine: it answers with trixie's version
/// and crun, runs the root's own dockerd, containerd, runc and crun (bound read-only),
/// `os version` and `engine list` name it, and the name is what is saved.
fn check_switched_engine(ssh: &Ssh, name: &str, trixie: &str) {
    use corral_api::protocol::{Engine, Version};
    let v = ssh
        .check(
            "docker info --format '{{.ServerVersion}} {{.DefaultRuntime}}'",
            CMD,
        )
        .expect("the switched engine answers");
    let (version, runtime) = v.trim().split_once(' ').expect("two fields");
    assert_eq!(
        (corral_harness::upstream(version), runtime),
        (trixie, "crun"),
        "{v}"
    );
    let mounts = ssh
        .check(
            "sudo system-docker inspect docker --format '{{range .Mounts}}{{.Source}}:{{.RW}} {{end}}'",
            CMD,
        )
        .expect("its mounts");
    for binary in [
        "/usr/sbin/dockerd",
        "/usr/bin/containerd",
        "/usr/sbin/runc",
        "/usr/bin/crun",
    ] {
        assert!(
            mounts.contains(&format!("{binary}:false")),
            "{binary} read-only in {mounts}"
        );
    }
    let v: Version = serde_json::from_str(
        &ssh.check("sudo corral os version --format json", CMD)
            .expect("version"),
    )
    .expect("version json");
    assert_eq!(v.user_engine_name.as_deref(), Some(name), "{v:?}");
    assert_eq!(v.user_runtime.as_deref(), Some("crun"), "{v:?}");
    let out = ssh
        .check("sudo corral engine list --format json", CMD)
        .expect("engine list");
    let engines: Vec<Engine> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(
        engines
            .iter()
            .any(|e| e.name.as_deref() == Some(name) && e.current),
        "listed as current: {engines:?}"
    );
    assert_eq!(
        ssh.check("sudo corral config get corral.docker.engine", CMD)
            .expect("saved")
            .trim(),
        name,
        "the name is saved, so a package bump keeps the choice"
    );
}

fn services(ssh: &Ssh) -> Vec<(String, String)> {
    let out = ssh
        .check("sudo corral service list --format json", CMD)
        .expect("service list");
    let list: Vec<corral_api::protocol::Service> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    list.into_iter().map(|s| (s.name, s.state)).collect()
}

/// First boot: `corral config set` and `merge`, a refused change, `service disable ntp`,
/// `enable crond` and `up crond`. [`check_config_and_services_kept`] looks after reboot.
fn change_config_and_services(ssh: &Ssh) {
    let said = ssh
        .check("sudo corral config set corral.sysctl.vm.swappiness 13", CMD)
        .expect("config set");
    assert!(said.contains("takes effect at the next boot"), "{said}");
    assert_eq!(
        ssh.check("sudo corral config get rancher.sysctl.vm.swappiness", CMD)
            .expect("config get")
            .trim(),
        "13"
    );
    ssh.check(
        "printf 'write_files:\n  - path: /home/corral/merged.txt\n    content: merged-ok\n' > m.yml \
         && sudo corral config merge -i m.yml",
        CMD,
    )
    .expect("config merge");
    // RancherOS's proxies and system engine settings: the system engine takes them at
    // its next start (the next boot), the user engine and the console too.
    ssh.check(
        "printf 'rancher:\n  network:\n    http_proxy: http://127.0.0.1:3128\n    no_proxy: localhost,.corral.test\n  system_docker:\n    environment: [CORRAL_SYSTEM_E2E=1]\n    extra_args: [--debug]\n    registry_mirror: https://mirror.corral.test\n' > p.yml \
         && sudo corral config merge -i p.yml",
        CMD,
    )
    .expect("config merge of the proxies");
    // Refused, with the key and the fix, and nothing saved.
    let before = ssh.check("sudo corral config export", CMD).expect("export");
    let (code, out) = ssh
        .run(
            "sudo corral config set corral.shutdown_timeout soon 2>&1",
            CMD,
        )
        .expect("bad set");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused and nothing was saved") && out.contains("shutdown_timeout"),
        "{out}"
    );
    assert_eq!(
        ssh.check("sudo corral config export", CMD).expect("export"),
        before
    );
    assert!(before.contains("swappiness: 13"), "{before}");
    // ntp off for good; crond from the catalogue on, and up now.
    let said = ssh
        .check("sudo corral service disable ntp", CMD)
        .expect("disable ntp");
    assert!(said.starts_with("disabled ntp"), "{said}");
    assert!(services(ssh).iter().all(|(n, _)| n != "ntp"), "ntp removed");
    ssh.check("! pidof chronyd", CMD).expect("chronyd is gone");
    ssh.check("sudo corral service enable crond", CMD)
        .expect("enable crond");
    let up = ssh
        .check("sudo corral service up crond", CMD)
        .expect("up crond");
    assert!(up.contains("crond") && up.contains("running"), "{up}");
    assert!(
        services(ssh).contains(&("crond".to_string(), "running".to_string())),
        "{:?}",
        services(ssh)
    );
    // Brought up after the boot, crond is watched like the boot's services: killed, the
    // manager starts it again (its `restart: always`).
    // busybox's crond is named busybox; `[b]` keeps pgrep from finding this shell.
    let crond = "pgrep -o -f '[b]usybox crond'";
    let old = ssh.check(crond, CMD).expect("crond's pid");
    let old = old.trim();
    ssh.check(&format!("sudo kill -9 {old}"), CMD)
        .expect("kill crond");
    let new = ssh
        .eventually(
            &format!("p=$({crond}) && [ \"$p\" != {old} ] && echo $p"),
            CMD,
            Duration::from_secs(10),
        )
        .expect("crond restarted by the manager");
    assert!(!new.trim().is_empty());
}

/// Second boot: what [`change_config_and_services`] did is still in force.
fn check_config_and_services_kept(ssh: &Ssh) {
    assert_eq!(
        ssh.check("cat /proc/sys/vm/swappiness", CMD)
            .expect("swappiness")
            .trim(),
        "13",
        "config set applied at boot"
    );
    assert_eq!(
        ssh.check("cat /home/corral/merged.txt", CMD)
            .expect("merged file")
            .trim(),
        "merged-ok"
    );
    // The proxies and `rancher.system_docker`, applied at this boot.
    let system = ssh
        .check(
            "sudo sh -c 'p=$(cat /proc/1/root/run/system-docker.pid); tr \"\\0\" \"\\n\" < /proc/$p/environ; tr \"\\0\" \" \" < /proc/$p/cmdline'",
            CMD,
        )
        .expect("the system engine's environment and flags");
    for want in [
        "CORRAL_SYSTEM_E2E=1",
        "HTTP_PROXY=http://127.0.0.1:3128",
        "no_proxy=localhost,.corral.test",
        "--registry-mirror=https://mirror.corral.test",
        "--debug",
    ] {
        assert!(
            system.contains(want),
            "{want} in the system engine: {system}"
        );
    }
    assert_eq!(
        ssh.check("bash -lc 'echo $http_proxy'", CMD)
            .expect("a login shell")
            .trim(),
        "http://127.0.0.1:3128",
        "the console's login shells get the proxy"
    );
    let user_proxy = ssh
        .eventually("docker info --format '{{.HTTPProxy}}' | grep .", BOOT, CMD)
        .expect("the user engine's proxy");
    assert_eq!(user_proxy.trim(), "http://127.0.0.1:3128");
    // Services come up after sshd: wait for crond, then ntp must still be absent.
    ssh.eventually(
        "sudo corral service list --format json | grep -q '\"crond\"'",
        BOOT,
        CMD,
    )
    .expect("crond is started at boot");
    let listed = services(ssh);
    assert!(listed.iter().all(|(n, _)| n != "ntp"), "{listed:?}");
    assert!(
        listed.contains(&("crond".to_string(), "running".to_string())),
        "{listed:?}"
    );
    ssh.check("! pidof chronyd", CMD)
        .expect("chronyd stays off");
}

#[test]
fn autoformat_formats_a_blank_disk_and_never_one_with_data() {
    let dir = log_dir("autoformat");
    std::fs::create_dir_all(&dir).expect("log dir");
    let with_data = dir.join("data.img");
    // Its first MiB wiped, data in its last (where a GPT keeps its backup copy).
    let with_tail = dir.join("tail.img");
    let blank = dir.join("blank.img");
    let mut content = vec![0u8; 64 << 20];
    content[700_000..700_013].copy_from_slice(b"precious data");
    std::fs::write(&with_data, &content).expect("data disk");
    let mut tail_content = vec![0u8; 64 << 20];
    let end = tail_content.len();
    tail_content[end - 512..end - 504].copy_from_slice(b"EFI PART");
    std::fs::write(&with_tail, &tail_content).expect("tail disk");
    std::fs::File::create(&blank)
        .and_then(|f| f.set_len(256 << 20))
        .expect("blank disk");
    let mut cfg = VmConfig::new(Boot::Kernel {
        kernel: artifact("vmlinuz"),
        initrd: artifact("initrd-pxe"),
        cmdline: "console=ttyS0,115200n8 corral.debug_shell=ttyS1 \
                  corral.state.autoformat=[/dev/vda,/dev/vdb,/dev/vdc]"
            .into(),
    });
    for file in [&with_data, &with_tail, &blank] {
        cfg.drives.push(Drive {
            file: file.clone(),
            kind: "virtio",
        });
    }
    let mut vm = Vm::start("autoformat", &cfg, &dir, Vec::new()).expect("QEMU");
    vm.wait_for("system ready for the manager", BOOT)
        .expect("PID 1 gets past the state partition");
    let console = vm.console.text();
    for disk in ["/dev/vda", "/dev/vdb"] {
        assert!(
            console.contains(&format!(
                "{disk} is not blank (its first or last MiB holds data); it is never formatted"
            )),
            "{console}"
        );
    }
    assert!(console.contains("formatting blank /dev/vdc as CORRAL_STATE"));
    assert!(console.contains("state: /dev/vdc mounted on /run/corral/state (formatted now)"));
    let mounts = vm.check("cat /proc/mounts", CMD).expect("mounts");
    assert!(
        mounts.contains("/dev/vdc /run/corral/state ext4"),
        "{mounts}"
    );
    assert!(mounts.contains(" /var/lib/docker ext4"), "{mounts}");
    vm.shell.send("poweroff\n").expect("send poweroff");
    vm.wait_exit(Duration::from_secs(180))
        .expect("QEMU exits after poweroff");
    assert_eq!(
        std::fs::read(&with_data).expect("data disk"),
        content,
        "the disk with data is untouched"
    );
    assert_eq!(
        std::fs::read(&with_tail).expect("tail disk"),
        tail_content,
        "the disk with a partition table at its end is untouched"
    );
    // The label as PID 1 reads it (and blkid would).
    assert_eq!(
        corral_host::label::of_device(&blank).as_deref(),
        Some("CORRAL_STATE")
    );
}

#[test]
fn the_iso_installs_to_a_blank_disk_which_then_boots_alone() {
    let dir = log_dir("install");
    std::fs::create_dir_all(&dir).expect("log dir");
    let target = dir.join("target.img");
    std::fs::File::create(&target)
        .and_then(|f| f.set_len(DISK_GIB << 30))
        .expect("a blank disk");
    let live_key = KeyPair::ensure(&dir.join("live_ed25519"), "corral-live").expect("key");
    let installed_key =
        KeyPair::ensure(&dir.join("installed_ed25519"), "corral-installed").expect("key");

    // The ISO with a blank virtio disk; the live system's key on the kernel command line,
    // typed at isolinux's prompt.
    let mut cfg = VmConfig::new(Boot::Iso(artifact("corral.iso")));
    cfg.drives.push(Drive {
        file: target.clone(),
        kind: "virtio",
    });
    let port = free_port().expect("port");
    cfg.ssh_port = Some(port);
    let answers = vec![(
        "boot:".to_string(),
        format!("corral {}\n", live_key.kernel_option()),
    )];
    let mut vm = Vm::start("install-iso", &cfg, &dir.join("iso"), answers).expect("QEMU");
    let ssh = Ssh {
        port,
        user: "corral".into(),
        key: live_key.private.clone(),
    };
    ssh.wait_ready(BOOT).expect("ssh into the ISO");

    // Refused: the CD it booted from, and a disk the user did not say yes to.
    let (code, out) = ssh
        .run("sudo corral install -d /dev/sr0 -f", CMD)
        .expect("ssh");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("holds the Corral ISO this machine booted from"),
        "{out}"
    );
    let no = dir.join("no.txt");
    std::fs::write(&no, "no\n").expect("answer file");
    let (code, out) = ssh
        .run_with_input("sudo corral install -d /dev/vda", Some(&no), CMD)
        .expect("ssh");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("erases everything on /dev/vda (3.0 GiB"),
        "{out}"
    );
    assert!(out.contains("nothing was written"), "{out}");
    let written = ssh
        .check("sudo head -c 1048576 /dev/vda | tr -d '\\0' | wc -c", CMD)
        .expect("read the disk");
    assert_eq!(written.trim(), "0", "the declined disk is untouched");

    // The install, with a cloud-config that brings another key and a hostname.
    let cloud_config = dir.join("cloud-config.yml");
    std::fs::write(
        &cloud_config,
        format!(
            "#cloud-config\nhostname: installed-1\nssh_authorized_keys:\n  - {}\n",
            installed_key.public.trim()
        ),
    )
    .expect("cloud-config");
    ssh.run_with_input("cat > cc.yml", Some(&cloud_config), CMD)
        .expect("copy the cloud-config in");
    let (code, out) = ssh
        .run(
            "sudo corral install -d /dev/vda -c cc.yml -f --no-reboot",
            Duration::from_secs(600),
        )
        .expect("ssh");
    eprintln!("corral install:\n{out}");
    assert_eq!(code, 0, "{out}");
    for line in [
        "[1/5] wiping",
        "[5/5] state partition",
        "Corral is installed on /dev/vda (from /dev/sr0)",
        "cloud-config from cc.yml",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    // The kernel sees the new table.
    ssh.check("test -b /dev/vda5 && test -b /dev/vda1", CMD)
        .expect("the new partitions");
    let _ = ssh.run("sudo poweroff", CMD);
    vm.wait_exit(Duration::from_secs(180))
        .expect("QEMU exits after poweroff");

    // The disk alone: GRUB from the disk, slot A, the state partition with the
    // cloud-config, which is what lets the other key in.
    let mut cfg = VmConfig::new(Boot::Disk(target));
    let port = free_port().expect("port");
    cfg.ssh_port = Some(port);
    let mut vm = Vm::start("install-disk", &cfg, &dir.join("disk"), Vec::new()).expect("QEMU");
    let ssh = Ssh {
        port,
        user: "corral".into(),
        key: installed_key.private.clone(),
    };
    let ready = ssh
        .wait_ready(BOOT)
        .expect("ssh into the installed disk with the cloud-config's key");
    eprintln!(
        "install-disk: sshd accepted the key {:.1}s after QEMU started",
        ready.duration_since(vm.started).as_secs_f64()
    );
    assert_eq!(
        ssh.check("hostname", CMD).expect("hostname").trim(),
        "installed-1"
    );
    let cmdline = ssh.check("cat /proc/cmdline", CMD).expect("cmdline");
    assert!(cmdline.contains("corral.slot=A"), "{cmdline}");
    assert!(
        vm.console
            .text()
            .contains("state: /dev/vda5 mounted on /run/corral/state"),
        "the installed state partition is mounted"
    );
    ssh.check("echo kept > /home/corral/persist.txt", CMD)
        .expect("write to home");
    let _ = ssh.run("sudo poweroff", CMD);
    vm.wait_exit(Duration::from_secs(180))
        .expect("QEMU exits after poweroff");

    // The same disk with OVMF: GRUB for UEFI from the ESP the install made.
    cfg.firmware = Firmware::Uefi;
    let mut vm = Vm::start("install-uefi", &cfg, &dir.join("uefi"), Vec::new()).expect("QEMU");
    ssh.wait_ready(BOOT).expect("ssh after the UEFI boot");
    assert_eq!(
        ssh.check("cat /home/corral/persist.txt", CMD)
            .expect("home")
            .trim(),
        "kept"
    );
    let _ = ssh.run("sudo poweroff", CMD);
    vm.wait_exit(Duration::from_secs(180))
        .expect("QEMU exits after poweroff");
}
