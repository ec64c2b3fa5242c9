//! Boot slots, at each boot of a machine that has them (`corral.slot=` on the kernel
//! command line): a trial GRUB gave up on (its tries spent) or a trial this machine
//! cancelled is recorded as a rollback, with its reason, on the console and in
//! `corral os status`; and a trial boot (`corral.trial=N`) is marked good only once the
//! machine is healthy: the system engine answers, every service that ran before the
//! upgrade (and the console and the user engine's service) runs, sshd accepts
//! connections and the user engine answers, all within `corral.upgrade.health_timeout`
//! (300 s by default). A trial that does not get there is cancelled and the machine
//! reboots into the slot that was good; one that never gets this far (a panic, a hang,
//! a power cut) is dropped by GRUB after its tries. The decisions are corral-disk's
//! `bootenv`; the files corral-update's `bootstate`.

use corral_disk::bootenv::{booted_slot, trial_boot, BootEnv, Slot, SlotState};
use corral_dockerd::engine::EngineSpec;
use corral_update::bootstate::{self, Record, Rollback, SlotRecord};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the manager mounts the ESP for a moment.
const ESP_MOUNT: &str = "/run/corral/esp";
/// The slots' record, on the state partition.
pub const RECORD: &str = "/var/lib/corral/upgrade/slots.json";
/// How long a trial boot gets to become healthy, by default and at least.
pub const HEALTH_TIMEOUT: u64 = 300;
const MIN_HEALTH_TIMEOUT: u64 = 60;
/// The services a healthy machine runs whatever ran before.
const ALWAYS: &[&str] = &["console", "docker"];
/// How long one health check may take: well inside the softdog's 60 s margin, which the
/// watchdog is fed before each check (a user engine whose socket accepts but does not
/// answer yet held a check for over a minute, and the softdog rebooted a healthy trial).
const CHECK_WITHIN: Duration = Duration::from_secs(20);
/// The watchdog device and the kernel's software watchdog, for machines without one.
const WATCHDOG: &str = "/dev/watchdog";
const SOFTDOG: &str = "softdog soft_margin=60";

/// A watchdog fed while a trial boot is checked: if the manager stops feeding it (a
/// hang), the kernel reboots the machine within a minute and GRUB counts a failed try.
struct Watchdog(std::fs::File);

impl Watchdog {
    /// Opens the machine's watchdog, loading the kernel's softdog when there is none.
    fn arm() -> Option<Watchdog> {
        if !Path::new(WATCHDOG).exists() {
            for problem in
                crate::apply::load_running(&[SOFTDOG.to_string()], "the trial's watchdog")
            {
                log::warn!("{problem}");
            }
        }
        match std::fs::OpenOptions::new().write(true).open(WATCHDOG) {
            Ok(f) => Some(Watchdog(f)),
            Err(e) => {
                log::warn!(
                    "opening {WATCHDOG}: {e}; a trial boot that hangs waits for a power cycle"
                );
                None
            }
        }
    }

    fn feed(&mut self) {
        use std::io::Write;
        let _ = self.0.write_all(b"1");
    }

    /// Stops it (the magic close).
    fn disarm(mut self) {
        use std::io::Write;
        let _ = self.0.write_all(b"V");
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The disk a block device's partition is on (`vda5` -> `vda`), from sysfs.
fn disk_of(sys_path: &Path) -> Option<String> {
    let real = std::fs::canonicalize(sys_path).ok()?;
    Some(real.parent()?.file_name()?.to_string_lossy().into_owned())
}

/// The ESP of the disk the machine booted from: the one `CORRAL_EFI` partition, or with
/// several, the one on the disk that holds the state partition.
fn esp_device() -> Option<PathBuf> {
    let found = corral_host::label::find(
        Path::new("/sys/class/block"),
        Path::new("/dev"),
        &["CORRAL_EFI"],
    );
    if found.len() <= 1 {
        return found.into_iter().next().map(|(node, _)| node);
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let (major, minor) = corral_host::mountinfo::state_device(&mountinfo)?;
    let state_dev = format!("{major}:{minor}");
    let state_disk = disk_of(&Path::new("/sys/dev/block").join(state_dev))?;
    found.into_iter().map(|(node, _)| node).find(|node| {
        let name = node.file_name().map(|n| n.to_string_lossy().into_owned());
        name.and_then(|n| disk_of(&Path::new("/sys/class/block").join(n)))
            .as_deref()
            == Some(state_disk.as_str())
    })
}

/// Runs `f` on the boot state with the ESP mounted; writes what it returns, if anything.
fn change(esp: &Path, f: impl FnOnce(&BootEnv) -> Option<BootEnv>) -> Result<BootEnv, String> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let dir = Path::new(ESP_MOUNT);
    std::fs::create_dir_all(dir).map_err(|e| format!("making {ESP_MOUNT}: {e}"))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some(esp), dir, Some("vfat"), flags, None::<&str>)
        .map_err(|e| format!("mounting the ESP {}: {e}", esp.display()))?;
    let result = (|| {
        let (env, _) = bootstate::read(dir).map_err(|e| e.to_string())?;
        match f(&env) {
            Some(next) => {
                bootstate::write(dir, &next).map_err(|e| e.to_string())?;
                Ok(next)
            }
            None => Ok(env),
        }
    })();
    nix::unistd::sync();
    if let Err(e) = umount2(dir, MntFlags::empty()) {
        log::warn!("unmounting {ESP_MOUNT}: {e}");
    }
    result
}

/// What runs, from the root's os-release.
fn running_release() -> SlotRecord {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let (version, build_id) = crate::api::os_release(&text);
    SlotRecord {
        version: version.unwrap_or_default(),
        build_id: build_id.unwrap_or_default(),
        written_at: 0,
    }
}

/// Records a trial that ended without becoming good. Returns the boot state.
fn record_rollback(esp: &Path, record: &mut Record) -> Result<BootEnv, String> {
    let mut failed = None;
    let env = change(esp, |env| {
        let (slot, next) = env.record_failure()?;
        failed = Some(slot);
        Some(next)
    })?;
    if let Some(slot) = failed {
        let version = record.slot(slot).map(|r| r.version.clone());
        let reason = record.trial_failure.take().unwrap_or_else(|| {
            "its trial boots ended before it was marked good (a panic, a hang, a power cut or a \
             failure early in the boot), and GRUB went back after its tries"
                .into()
        });
        log::error!(
            "upgrade rolled back: slot {slot} ({}) was not kept: {reason}; running slot {} ({})",
            version.as_deref().unwrap_or("unknown version"),
            env.good,
            running_release().version
        );
        record.last_rollback = Some(Rollback {
            slot,
            version,
            reason,
            at: now(),
        });
    }
    Ok(env)
}

/// Why the machine is not healthy yet; `None` when it is.
async fn unhealthy(spec: &EngineSpec, needed: &[String], ssh_port: Option<u16>) -> Option<String> {
    let docker = match corral_dockerd::engine::connect(spec).await {
        Ok(d) => d,
        Err(e) => return Some(format!("the system engine does not answer: {e}")),
    };
    if docker.ping().await.is_err() {
        return Some("the system engine does not answer".into());
    }
    let services = match crate::api::list(&docker).await {
        Ok(s) => s,
        Err(e) => return Some(format!("listing the services: {e}")),
    };
    let down: Vec<&str> = needed
        .iter()
        .filter(|n| {
            !services
                .iter()
                .any(|s| &s.name == *n && s.state == "running")
        })
        .map(String::as_str)
        .collect();
    if !down.is_empty() {
        return Some(format!("services not running: {}", down.join(", ")));
    }
    if let Some(port) = ssh_port {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let probe =
            tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr));
        if !matches!(probe.await, Ok(Ok(_))) {
            return Some(format!("sshd does not accept connections on port {port}"));
        }
    }
    if corral_user_docker::client::answering(Duration::from_secs(2))
        .await
        .is_none()
    {
        return Some("the user engine does not answer".into());
    }
    None
}

/// At each boot, once: records a rollback, and marks a healthy trial boot good (or
/// cancels an unhealthy one and reboots).
pub async fn on_boot(spec: EngineSpec) {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let Some(running) = booted_slot(&cmdline) else {
        return;
    };
    let Some(esp) = esp_device() else {
        log::warn!("boot slot {running}: no CORRAL_EFI partition found; upgrades and rollbacks are not tracked this boot");
        return;
    };
    let path = Path::new(RECORD);
    let mut record = Record::load(path);
    let env = match record_rollback(&esp, &mut record) {
        Ok(env) => env,
        Err(e) => {
            log::error!("reading the boot state: {e}");
            return;
        }
    };
    let here = running_release();
    if record.slot(running).map(|r| (&r.version, &r.build_id))
        != Some((&here.version, &here.build_id))
    {
        record.set(running, Some(here.clone()));
    }
    if let Err(e) = record.save(path) {
        log::warn!("saving the slots' record: {e}");
    }
    if !trial_boot(&cmdline) || env.state(running) != SlotState::Trial {
        return;
    }
    let config = crate::configure::current_config().config;
    let timeout = config
        .corral
        .upgrade
        .health_timeout
        .map(u64::from)
        .unwrap_or(HEALTH_TIMEOUT)
        .max(MIN_HEALTH_TIMEOUT);
    let ssh_port =
        (config.corral.ssh.daemon != Some(false)).then(|| config.corral.ssh.port.unwrap_or(22));
    let mut needed: Vec<String> = ALWAYS.iter().map(|s| s.to_string()).collect();
    for s in &record.services_before {
        if !needed.contains(s) {
            needed.push(s.clone());
        }
    }
    log::info!(
        "trial boot of slot {running} (Corral {}): kept once healthy, within {timeout}s",
        here.version
    );
    let mut watchdog = Watchdog::arm();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut why = String::new();
    while tokio::time::Instant::now() < deadline {
        if let Some(w) = watchdog.as_mut() {
            w.feed();
        }
        // Bounded well inside the watchdog's minute: a check that waits on a slow engine
        // must not look like a hung manager.
        let checked = tokio::time::timeout(CHECK_WITHIN, unhealthy(&spec, &needed, ssh_port))
            .await
            .unwrap_or_else(|_| {
                Some(format!(
                    "the health check took longer than {}s",
                    CHECK_WITHIN.as_secs()
                ))
            });
        match checked {
            None => {
                if let Some(w) = watchdog.take() {
                    w.disarm();
                }
                match change(&esp, |env| env.commit(running)) {
                    Ok(_) => log::info!(
                        "slot {running} (Corral {}) is healthy and marked good; it boots from now on",
                        here.version
                    ),
                    Err(e) => log::error!("marking slot {running} good: {e}; its trial continues"),
                }
                return;
            }
            Some(reason) => why = reason,
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    cancel(
        &esp,
        running,
        &mut record,
        format!("not healthy within {timeout}s: {why}"),
    );
}

/// Ends an unhealthy trial: the reason saved for the next boot, the trial cancelled, a
/// reboot into the good slot.
fn cancel(esp: &Path, running: Slot, record: &mut Record, reason: String) {
    log::error!("trial boot of slot {running} failed: {reason}; rebooting into the good slot");
    record.trial_failure = Some(reason);
    if let Err(e) = record.save(Path::new(RECORD)) {
        log::warn!("saving the slots' record: {e}");
    }
    match change(esp, |env| env.cancel(running)) {
        Ok(_) => {}
        // GRUB's tries still end the trial.
        Err(e) => log::error!("cancelling the trial: {e}; GRUB drops it after its tries"),
    }
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), nix::sys::signal::SIGTERM);
}
