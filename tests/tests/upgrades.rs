//! Upgrades of the disk image (`make upgrades`, not `make test`: one disk booted a dozen
//! times under TCG does not fit beside the rest; docs/testing.md). `make upgrades`
//! builds a second version (0.1.1-test) into `target/upgrade/dist`, signed with the key
//! dist/'s images trust, and serves its repository to the guest from 127.0.0.1 through
//! QEMU's guestfwd at 169.254.169.253:8080 (QEMU 7.2 takes one guestfwd per guest
//! port). One 3 GiB disk from `dist/corral.img`, booted with BIOS, the trial boot with
//! UEFI (both firmwares' GRUB read the same boot state):
//!
//! 1. Refused before anything is written: a repository whose initrd was changed after
//!    signing; `os status` still shows slot B empty.
//! 2. A download cut part way (the server drops the root image's connection after 40 MB): the
//!    upgrade fails and says so; run again, it resumes with a `Range` request, writes
//!    slot B, arms its trial and reboots.
//! 0. Before the first upgrade the machine switches to the Debian console (its archive
//!    served the same way) and apt installs a package from a repository served there too.
//! 3. The trial boot of slot B runs the new version with the machine's state: the same
//!    host keys, the user's container, the configuration, the Debian console (its image
//!    loaded again from its kept archive, as the store was seeded anew) with the package
//!    still installed; the manager marks it good once healthy; the default console is
//!    switched back for the steps that follow; `os status` shows both slots. The first version, which the repository
//!    offers too, is refused as older without `--force`, nothing written.
//! 4. `os rollback` and a reboot: slot A's version runs again.
//! 5. QEMU killed while slot B is written: the next boot is the old version with slot B
//!    empty.
//! 6. An upgrade from the update file on a second disk (`os list --from FILE` lists
//!    it), then the trial boot cut off (QEMU killed as the kernel starts) as many times
//!    as GRUB's tries allow: the machine comes back on slot A by itself, and `os status`
//!    reports the rollback and its reason.
//! 7. An upgrade to a release built with a console that cannot start: the manager finds
//!    the trial unhealthy within `corral.upgrade.health_timeout` (60 s), cancels it and
//!    reboots; slot A runs and `os status` gives the reason.
//! 8. A trial boot that hangs (its manager stopped with SIGSTOP while the trial needs a
//!    service that no longer runs): the softdog the manager fed reboots it, GRUB counts
//!    the try, and the next trial boot, healthy once the service runs, is marked good.

use corral_harness::files::{Cut, FileServer};
use corral_harness::imds::{FakeImds, Instance};
use corral_harness::{
    artifact, free_port, log_dir, repo_root, test_image, Boot, Firmware, KeyPair, Ssh, Vm, VmConfig,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(600);
const CMD: Duration = Duration::from_secs(120);
const UPGRADE: Duration = Duration::from_secs(900);
const BUSYBOX: &str = "corral/busybox:0.1.0";
/// Where the guest reaches the repository server.
const REPO_ADDR: &str = "169.254.169.253:8080";

#[path = "common/apt.rs"]
mod apt;

/// The second version's dist folder (`make upgrades` builds it).
fn new_dist() -> PathBuf {
    std::env::var_os("CORRAL_UPGRADE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/upgrade/dist"))
}

fn version_of(dist: &Path) -> String {
    let manifest = std::fs::read_to_string(dist.join("manifest.json")).expect("manifest");
    let v: serde_json::Value = serde_json::from_str(&manifest).expect("manifest json");
    v["version"].as_str().expect("version").to_string()
}

struct Machine {
    disk: PathBuf,
    /// An ext4 disk holding the new version's update file (the guest's /dev/vda).
    updates: PathBuf,
    dir: PathBuf,
    imds: FakeImds,
    repo_port: u16,
    key: PathBuf,
}

impl Machine {
    fn config(&self, firmware: Firmware) -> (VmConfig, u16) {
        let mut cfg = VmConfig::new(Boot::Nvme(self.disk.clone()));
        cfg.firmware = firmware;
        cfg.drives.push(corral_harness::Drive {
            file: self.updates.clone(),
            kind: "virtio",
        });
        let port = free_port().expect("port");
        cfg.ssh_port = Some(port);
        cfg.metadata_port = Some(self.imds.port);
        cfg.guest_forwards = vec![(REPO_ADDR.into(), self.repo_port)];
        cfg.smbios_vendor = Some("Amazon EC2".into());
        (cfg, port)
    }

    fn start(&self, step: &str, firmware: Firmware) -> (Vm, u16) {
        let (cfg, port) = self.config(firmware);
        let vm = Vm::start(
            &format!("upgrades-{step}"),
            &cfg,
            &self.dir.join(step),
            Vec::new(),
        )
        .expect("QEMU");
        (vm, port)
    }

    fn ssh(&self, port: u16) -> Ssh {
        Ssh {
            port,
            user: "corral".into(),
            key: self.key.clone(),
        }
    }

    /// Powers the disk on and waits for ssh.
    fn power_on(&self, step: &str, firmware: Firmware) -> (Vm, Ssh) {
        let (vm, port) = self.start(step, firmware);
        let ssh = self.ssh(port);
        ssh.wait_ready(BOOT)
            .unwrap_or_else(|e| panic!("ssh at boot {step}: {e:?}"));
        (vm, ssh)
    }
}

fn status(ssh: &Ssh) -> serde_json::Value {
    let out = ssh
        .check("sudo corral os status --format json", CMD)
        .expect("os status");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("os status json: {e}\n{out}"))
}

fn slot<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["slots"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["slot"] == name))
        .unwrap_or_else(|| panic!("slot {name} in {status}"))
}

fn os_version(ssh: &Ssh) -> String {
    let out = ssh
        .check(
            "sudo sh -c '. /proc/1/root/etc/os-release; echo version=$VERSION_ID'",
            CMD,
        )
        .expect("os-release");
    // The marked line, whatever else the command printed (ssh joins stdout and stderr).
    out.lines()
        .find_map(|l| l.trim().strip_prefix("version="))
        .unwrap_or("")
        .to_string()
}

/// Waits until the manager marked the running trial slot good.
fn marked_good(ssh: &Ssh, name: &str) {
    ssh.eventually(
        &format!(
            "sudo corral os status --format json | tr -d ' \\n' | grep -q '\"slot\":\"{name}\",[^}}]*\"state\":\"good\"'"
        ),
        BOOT,
        CMD,
    )
    .unwrap_or_else(|e| panic!("slot {name} marked good: {e}"));
}

/// A copy of `repo` whose initrd differs from what its metadata signed.
fn tampered(repo: &Path, to: &Path) {
    for sub in ["metadata", "targets"] {
        std::fs::create_dir_all(to.join(sub)).expect("mkdir");
        for entry in std::fs::read_dir(repo.join(sub))
            .expect("read repo")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            let dest = to.join(sub).join(&name);
            if name.ends_with("-initrd") {
                let mut bytes = std::fs::read(entry.path()).expect("initrd");
                let last = bytes.len() - 1;
                bytes[last] ^= 0xff;
                std::fs::write(&dest, bytes).expect("tampered initrd");
            } else {
                std::fs::copy(entry.path(), &dest).expect("copy");
            }
        }
    }
}

#[test]
#[ignore = "several boots of one disk and a second build: `make upgrades` (docs/testing.md)"]
fn a_machine_upgrades_keeps_its_state_and_comes_back_from_a_bad_trial() {
    let dir = log_dir("upgrades");
    std::fs::create_dir_all(&dir).expect("log dir");
    let new = new_dist();
    let (old_version, new_version) = (version_of(&repo_root().join("dist")), version_of(&new));
    assert_ne!(
        old_version, new_version,
        "make upgrades builds a second version"
    );
    let served = dir.join("served");
    let _ = std::fs::remove_dir_all(&served);
    std::fs::create_dir_all(&served).expect("served");
    std::os::unix::fs::symlink(new.join("update"), served.join("update")).expect("link");
    tampered(&new.join("update"), &served.join("tampered"));
    std::os::unix::fs::symlink(
        artifact("console-debian.tar"),
        served.join("console-debian.tar"),
    )
    .expect("link");
    apt::flat_repository(&dir);
    let server = FileServer::start(
        &served,
        Some(Cut {
            prefix: "/update/targets/".into(),
            // The largest part, the root image (the initrd is a few MB).
            suffix: "-root.squashfs".into(),
            bytes: 40 << 20,
        }),
    )
    .expect("file server");
    let disk = dir.join("disk.img");
    corral_harness::disk_from_image(&artifact("corral.img"), &disk, 3 << 30).expect("disk");
    let key = KeyPair::ensure(&dir.join("id_ed25519"), "corral-upgrades").expect("key pair");
    let imds = FakeImds::start(Instance {
        instance_id: "i-0upgrade000000001".into(),
        local_hostname: "upgrades".into(),
        region: "us-east-1".into(),
        public_keys: vec![("e2e".into(), key.public.clone())],
        user_data: None,
        require_token: true,
        v1_only: false,
    })
    .expect("fake IMDS");
    let updates = dir.join("updates.img");
    let update_file = update_file(&new);
    let stage = dir.join("updates");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).expect("mkdir");
    std::fs::copy(
        &update_file,
        stage.join(update_file.file_name().expect("name")),
    )
    .expect("copy the update file");
    let made = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "UPDATES", "-d"])
        .arg(&stage)
        .arg(&updates)
        .arg("400M")
        .status()
        .expect("mkfs.ext4");
    assert!(made.success(), "mkfs.ext4 -d for the update disk");
    let in_guest = format!(
        "/mnt/updates/{}",
        update_file.file_name().expect("name").to_string_lossy()
    );
    let m = Machine {
        updates,
        disk,
        dir: dir.clone(),
        imds,
        repo_port: server.port,
        key: key.private.clone(),
    };

    let (mut vm, ssh) = m.power_on("1-first", Firmware::Bios);
    assert_eq!(os_version(&ssh), old_version);
    let s = status(&ssh);
    assert_eq!(slot(&s, "A")["state"], "good", "{s}");
    assert_eq!(slot(&s, "A")["running"], true, "{s}");
    assert_eq!(slot(&s, "B")["state"], "empty", "{s}");
    let host_key = ssh
        .check("sudo cat /var/lib/corral/ssh/ssh_host_ed25519_key.pub", CMD)
        .expect("host key");
    ssh.run_with_input("docker load", Some(&test_image("busybox")), CMD)
        .expect("docker load");
    ssh.check(
        &format!("docker run -d --name keep --restart always {BUSYBOX} sleep 100000"),
        CMD,
    )
    .expect("a user's container");
    ssh.check(
        "sudo corral config set corral.upgrade.health_timeout 240",
        CMD,
    )
    .expect("config set");

    // 0. The Debian console, and a package apt installs there: both must come through
    // the upgrade.
    let (code, out) = ssh
        .run(
            &format!(
                "sudo corral console switch debian --from http://{REPO_ADDR}/console-debian.tar 2>&1"
            ),
            UPGRADE,
        )
        .unwrap_or((-1, String::new()));
    eprintln!("upgrades: console switch (exit {code}, the session ends with the console): {out}");
    ssh.eventually(
        "test -f /etc/debian_version && command -v apt-get",
        UPGRADE,
        CMD,
    )
    .expect("the Debian console");
    let installed = apt::install_hello(&ssh, REPO_ADDR, UPGRADE);
    assert!(installed.ends_with("hello from apt\n"), "{installed}");

    // 1. A changed initrd: refused, nothing written.
    let (code, out) = ssh
        .run(
            &format!("sudo corral os upgrade --from http://{REPO_ADDR}/tampered/ 2>&1"),
            UPGRADE,
        )
        .expect("upgrade from the tampered repository");
    eprintln!("upgrades: tampered: exit {code}: {}", out.trim());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("differs from what the signed metadata says"),
        "{out}"
    );
    assert_eq!(slot(&status(&ssh), "B")["state"], "empty");

    // 2. A download cut part way, then resumed.
    let url = format!("http://{REPO_ADDR}/update/");
    let (code, out) = ssh
        .run(
            &format!("sudo corral os upgrade --from {url} 2>&1"),
            UPGRADE,
        )
        .expect("upgrade, cut");
    eprintln!("upgrades: cut download: exit {code}: {}", out.trim());
    assert_ne!(code, 0, "{out}");
    assert_eq!(slot(&status(&ssh), "B")["state"], "empty");
    let (code, out) = ssh
        .run(
            &format!("sudo corral os upgrade --from {url} 2>&1"),
            UPGRADE,
        )
        .expect("upgrade, resumed");
    eprintln!("upgrades: resumed: exit {code}: {}", out.trim());
    assert_eq!(code, 0, "{out}");
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("-root.squashfs") && !r.ends_with("range=-")),
        "a Range request resumed the root image: {requests:?}"
    );
    vm.wait_exit(BOOT).expect("the upgrade reboots");
    drop(vm);

    // 3. The trial boot of slot B.
    let (mut vm, ssh) = m.power_on("2-trial", Firmware::Uefi);
    let console = vm.console.text();
    assert!(
        console.contains("corral.slot=B corral.trial=2"),
        "the trial's command line"
    );
    assert_eq!(os_version(&ssh), new_version);
    marked_good(&ssh, "B");
    // The Debian console came through, its image loaded again from its kept archive (the
    // new version's store was seeded anew, its volumes kept), the package still there.
    assert_eq!(
        ssh.check(
            "corral-hello && dpkg-query -W -f '${Status}' corral-hello",
            CMD
        )
        .expect("the package after the upgrade"),
        "hello from apt\ninstall ok installed"
    );
    assert!(
        vm.console
            .text()
            .contains("console debian: loading /var/lib/corral/consoles/debian.tar"),
        "the Debian console loaded again from its archive"
    );
    let _ = ssh.run("sudo corral console switch default 2>&1", UPGRADE);
    ssh.eventually("! command -v apt-get", UPGRADE, CMD)
        .expect("the default console back for the steps that follow");
    let s = status(&ssh);
    eprintln!("upgrades: after the trial: {s}");
    assert_eq!(slot(&s, "A")["version"], old_version.as_str(), "{s}");
    assert_eq!(slot(&s, "B")["version"], new_version.as_str(), "{s}");
    assert_eq!(slot(&s, "B")["running"], true, "{s}");
    let same_key = ssh
        .check("sudo cat /var/lib/corral/ssh/ssh_host_ed25519_key.pub", CMD)
        .expect("host key");
    assert_eq!(same_key, host_key, "the host keys carry over");
    ssh.eventually(
        "docker ps --filter name=keep --format '{{.Status}}' | grep -q Up",
        BOOT,
        CMD,
    )
    .expect("the user's container runs again");
    let timeout = ssh
        .check("sudo corral config get corral.upgrade.health_timeout", CMD)
        .expect("config get");
    assert_eq!(timeout.trim(), "240", "the configuration carries over");

    // An older release (the repository offers the first version too) is refused
    // without --force, before anything is written.
    let (code, out) = ssh
        .run(
            &format!(
                "sudo corral os upgrade --from http://{REPO_ADDR}/update/ --version {old_version} 2>&1"
            ),
            UPGRADE,
        )
        .expect("an older version");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("is older than the running") && out.contains("--force"),
        "{out}"
    );
    assert_eq!(status(&ssh), s, "nothing written");

    // 4. Rollback.
    let out = ssh.check("sudo corral os rollback", CMD).expect("rollback");
    assert!(out.contains("slot A boots next"), "{out}");
    ssh.run("sudo corral reboot", CMD).ok();
    vm.wait_exit(BOOT).expect("reboot");
    drop(vm);
    let (vm, ssh) = m.power_on("3-rolled-back", Firmware::Bios);
    assert_eq!(os_version(&ssh), old_version);
    let s = status(&ssh);
    assert_eq!(slot(&s, "A")["running"], true, "{s}");
    assert_eq!(slot(&s, "B")["state"], "good", "{s}");

    // 5. The power cut while slot B is written: the old version boots, B is empty.
    ssh.check(
        &format!(
            "sudo setsid sh -c 'corral os upgrade --from {url} --no-reboot > /tmp/upgrade.log 2>&1' \
             < /dev/null > /dev/null 2>&1 &"
        ),
        CMD,
    )
    .expect("an upgrade in the background");
    ssh.eventually(
        "grep -q ' /run/corral/upgrade/slot ' /proc/mounts",
        UPGRADE,
        CMD,
    )
    .expect("the slot is being written");
    drop(vm);
    let (vm, ssh) = m.power_on("4-after-cut-write", Firmware::Bios);
    assert_eq!(
        os_version(&ssh),
        old_version,
        "the old version after a cut write"
    );
    let s = status(&ssh);
    eprintln!("upgrades: after a cut slot write: {s}");
    assert_eq!(slot(&s, "A")["running"], true, "{s}");
    assert_eq!(slot(&s, "B")["state"], "empty", "{s}");

    // 6. A trial cut off before it is marked good, as many times as its tries allow.
    // This time from the update file on a disk of its own.
    ssh.check(
        "sudo mkdir -p /mnt/updates && sudo mount -o ro /dev/vda /mnt/updates",
        CMD,
    )
    .expect("mount the update disk");
    let listed = ssh
        .check(
            &format!("sudo corral os list --from {in_guest} --format json"),
            CMD,
        )
        .expect("os list from the file");
    assert!(
        listed.contains(&format!("\"version\": \"{new_version}\"")),
        "{listed}"
    );
    let (code, out) = ssh
        .run(
            &format!("sudo corral os upgrade --from {in_guest} 2>&1"),
            UPGRADE,
        )
        .expect("upgrade again");
    assert_eq!(code, 0, "{out}");
    let mut vm = vm;
    vm.wait_exit(BOOT).expect("the upgrade reboots");
    drop(vm);
    for (i, left) in ["2", "1", "0"].iter().enumerate() {
        let (vm, _) = m.start(&format!("5-trial-cut-{i}"), Firmware::Bios);
        vm.wait_for(&format!("corral.slot=B corral.trial={left}"), BOOT)
            .unwrap_or_else(|e| panic!("trial boot {i}: {e}"));
        drop(vm);
    }
    let (vm, ssh) = m.power_on("6-after-cut-trials", Firmware::Bios);
    assert!(
        vm.console.text().contains("upgrade rolled back: slot B"),
        "the console says it rolled back"
    );
    assert_eq!(os_version(&ssh), old_version, "GRUB went back to slot A");
    let s = status(&ssh);
    eprintln!("upgrades: after three cut trials: {s}");
    assert_eq!(slot(&s, "A")["running"], true, "{s}");
    assert_eq!(slot(&s, "B")["state"], "bad", "{s}");
    assert_eq!(s["last_rollback"]["slot"], "B", "{s}");
    let reason = s["last_rollback"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("ended before it was marked good"),
        "{reason}"
    );

    // 7. A release whose console cannot start: its trial is not healthy in time, the
    // manager cancels it and the machine comes back on slot A.
    let (vm, ssh) = {
        let bad = unhealthy_dist();
        std::os::unix::fs::symlink(bad.join("update"), served.join("unhealthy")).expect("link");
        ssh.check(
            "sudo corral config set corral.upgrade.health_timeout 60",
            CMD,
        )
        .expect("config set");
        let (code, out) = ssh
            .run(
                &format!("sudo corral os upgrade --from http://{REPO_ADDR}/unhealthy/ 2>&1"),
                UPGRADE,
            )
            .expect("upgrade to the unhealthy release");
        assert_eq!(code, 0, "{out}");
        let mut vm = vm;
        vm.wait_exit(BOOT).expect("the upgrade reboots");
        drop(vm);
        let (mut vm, _) = m.start("7-unhealthy-trial", Firmware::Bios);
        vm.wait_for("trial boot of slot B failed", BOOT)
            .expect("the manager gives the trial up");
        vm.wait_exit(BOOT).expect("and reboots");
        drop(vm);
        let (vm, ssh) = m.power_on("8-after-unhealthy", Firmware::Bios);
        assert_eq!(os_version(&ssh), old_version);
        let s = status(&ssh);
        eprintln!("upgrades: after the unhealthy trial: {s}");
        let reason = s["last_rollback"]["reason"].as_str().unwrap_or("");
        assert!(
            reason.contains("not healthy within 60s") && reason.contains("console"),
            "{reason}"
        );
        assert_eq!(slot(&s, "B")["state"], "bad", "{s}");
        (vm, ssh)
    };

    // 8. A trial boot that hangs: its manager stopped, nothing feeds the watchdog and the
    // kernel's softdog reboots the machine; GRUB counts the try, and the next trial boot,
    // healthy once crond runs again, is kept. crond ran before the upgrade, so the trial
    // needs it; disabled after the upgrade, the trial cannot become healthy by itself.
    ssh.check(
        "sudo corral config set corral.upgrade.health_timeout 900 && sudo corral service enable crond && sudo corral service up crond",
        CMD,
    )
    .expect("crond up");
    let (code, out) = ssh
        .run(
            // The repository with the newest metadata this machine has seen (the
            // unhealthy release's, which offers this version too): an older one is a
            // replay to TUF.
            &format!(
                "sudo corral os upgrade --no-reboot --from http://{REPO_ADDR}/unhealthy/ --version {new_version} 2>&1"
            ),
            UPGRADE,
        )
        .expect("upgrade without a reboot");
    assert_eq!(code, 0, "{out}");
    ssh.check("sudo corral service disable crond", CMD)
        .expect("crond disabled");
    ssh.run("sudo corral reboot", CMD).ok();
    let mut vm = vm;
    vm.wait_exit(BOOT).expect("the reboot");
    drop(vm);
    {
        let (mut vm, port) = m.start("9-hung-trial", Firmware::Bios);
        vm.wait_for("corral.slot=B corral.trial=2", BOOT)
            .expect("the trial boot");
        vm.wait_for("kept once healthy, within 900s", BOOT)
            .expect("the manager checks the trial");
        let ssh = m.ssh(port);
        ssh.wait_ready(BOOT).expect("ssh in the hung trial");
        ssh.check(
            "sudo sh -c 'for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = corral-manager ] && kill -STOP ${p#/proc/}; done; true'",
            CMD,
        )
        .expect("stop the manager");
        let fired = vm
            .wait_for("Initiating system reboot", Duration::from_secs(300))
            .expect("the softdog fires");
        eprintln!("upgrades: the watchdog rebooted the hung trial at {fired:.0}s");
        vm.wait_exit(BOOT).expect("the watchdog's reboot");
    }
    let (vm, port) = m.start("10-trial-after-watchdog", Firmware::Bios);
    vm.wait_for("corral.slot=B corral.trial=1", BOOT)
        .expect("GRUB counted the hung boot as a try");
    let ssh = m.ssh(port);
    ssh.wait_ready(BOOT).expect("ssh in the second trial");
    ssh.check(
        "sudo corral service enable crond && sudo corral service up crond",
        CMD,
    )
    .expect("crond up again");
    marked_good(&ssh, "B");
    assert_eq!(os_version(&ssh), new_version);
    let s = status(&ssh);
    eprintln!("upgrades: after the watchdog: {s}");
    assert_eq!(slot(&s, "B")["running"], true, "{s}");
    assert_eq!(slot(&s, "A")["state"], "good", "{s}");
    drop(vm);

    eprintln!("upgrades: server saw {:?}", server.requests());
}

/// The update file a dist folder's manifest names.
fn update_file(dist: &Path) -> PathBuf {
    let manifest = std::fs::read_to_string(dist.join("manifest.json")).expect("manifest");
    let v: serde_json::Value = serde_json::from_str(&manifest).expect("manifest json");
    let file = PathBuf::from(v["update"]["file"].as_str().expect("update.file"));
    if file.is_absolute() {
        file
    } else {
        repo_root().join(file)
    }
}

/// The release built to be unhealthy (`make upgrades` builds it).
fn unhealthy_dist() -> PathBuf {
    let dir = std::env::var_os("CORRAL_UNHEALTHY_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/upgrade/unhealthy"));
    assert!(
        dir.join("manifest.json").exists(),
        "{} is missing: run make upgrades, which builds it",
        dir.display()
    );
    dir
}
