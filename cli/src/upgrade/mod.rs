//! `corral os upgrade|list|status|rollback`: the running machine's side of updates.
//!
//! An upgrade checks first (the machine has slots, the running slot is the good one and
//! not on trial, the source is given), opens the repository against the root metadata
//! built into the image, picks the release (the newest, or `--version`; an older one or
//! the same build only with `--force`), reads every file through `tough`'s checks (a
//! download resumes where it stopped), and only then writes: the boot state marks the
//! other slot empty, the slot gets a new filesystem and the files (their sha256s checked
//! again), then the boot state arms one trial of it with three tries, and the machine
//! reboots. The running slot is never written. docs/upgrades.md.

pub mod machine;
pub mod slot;

use crate::install::host::Host;
use corral_disk::bootenv::{BootEnv, Slot, SlotState};
use corral_update::bootstate::{self, Record, SlotRecord};
use corral_update::fetch::{Client, Source};
use corral_update::release::{choose, Release, ReleaseId};
use corral_update::UpdateError;
use machine::{booted_slot, change_env, with_esp, HOST_ROOT, STATE_DIR, TRUSTED_ROOT};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A failure, with whose fault it is.
#[derive(Debug)]
pub enum UpgradeError {
    /// Something the user can change: the source, the version, the machine's state.
    User(String),
    System(String),
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpgradeError::User(m) | UpgradeError::System(m) => f.write_str(m),
        }
    }
}

impl From<UpdateError> for UpgradeError {
    fn from(e: UpdateError) -> UpgradeError {
        match e {
            UpdateError::Io { .. } | UpdateError::Sign { .. } => {
                UpgradeError::System(e.to_string())
            }
            _ => UpgradeError::User(e.to_string()),
        }
    }
}

impl UpgradeError {
    pub fn is_user_error(&self) -> bool {
        matches!(self, UpgradeError::User(_))
    }
}

/// What `corral os upgrade` was asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// `--from`: a URL, a repository folder or an update file; else `corral.upgrade.url`.
    pub from: Option<String>,
    pub version: Option<String>,
    pub force: bool,
}

/// What an upgrade did.
#[derive(Debug)]
pub struct Done {
    pub from: ReleaseId,
    pub to: ReleaseId,
    pub slot: Slot,
}

fn read_host(rel: &str) -> Result<Vec<u8>, UpgradeError> {
    let path = Path::new(HOST_ROOT).join(rel);
    std::fs::read(&path)
        .map_err(|e| UpgradeError::System(format!("reading {}: {e}", path.display())))
}

/// The release that runs.
pub fn running_release() -> Result<ReleaseId, UpgradeError> {
    let text = read_host("etc/os-release")?;
    Ok(ReleaseId::from_os_release(&String::from_utf8_lossy(&text)))
}

/// Where updates come from: `--from`, else the configuration's `corral.upgrade.url`.
fn source(from: Option<&str>) -> Result<Source, UpgradeError> {
    let text = match from {
        Some(f) => f.to_string(),
        None => corral_config::edit::Machine::here()
            .in_force()
            .config
            .corral
            .upgrade
            .url
            .map(|u| u.to_string())
            .ok_or_else(|| {
                UpgradeError::User(
                    "no update source: give --from URL|FILE, or set one with \
                     sudo corral config set corral.upgrade.url https://HOST/PATH/"
                        .into(),
                )
            })?,
    };
    Ok(Source::parse(&text)?)
}

fn runtime() -> Result<tokio::runtime::Runtime, UpgradeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| UpgradeError::System(format!("starting an async runtime: {e}")))
}

/// Opens the source against the image's root metadata.
fn open(rt: &tokio::runtime::Runtime, source: Source) -> Result<Client, UpgradeError> {
    let root = read_host(TRUSTED_ROOT).map_err(|e| {
        UpgradeError::System(format!(
            "{e}; this image was built before signed updates and cannot verify one: \
             reinstall it (docs/upgrades.md)"
        ))
    })?;
    let state = Path::new(STATE_DIR);
    Ok(rt.block_on(Client::open(
        source,
        &root,
        &state.join("tuf"),
        &state.join("cache"),
        true,
    ))?)
}

fn record_path() -> PathBuf {
    Path::new(STATE_DIR).join("slots.json")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn running_slot() -> Result<Slot, UpgradeError> {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    booted_slot(&cmdline).ok_or_else(|| {
        UpgradeError::User(
            "this machine booted without boot slots (a live machine from the ISO): there is no \
             other slot to write; install Corral to a disk with corral install -d DEVICE, then \
             upgrade it"
                .into(),
        )
    })
}

/// Takes the upgrade lock, so two upgrades never write at once.
fn lock() -> Result<nix::fcntl::Flock<std::fs::File>, UpgradeError> {
    let path = Path::new(machine::SCRATCH).join("lock");
    let _ = std::fs::create_dir_all(machine::SCRATCH);
    let file = std::fs::File::create(&path)
        .map_err(|e| UpgradeError::System(format!("opening {}: {e}", path.display())))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| UpgradeError::User("another corral os upgrade or rollback is running".into()))
}

/// Upgrades the machine into its other slot; the caller reboots.
pub fn upgrade(host: &dyn Host, req: &Request) -> Result<Done, UpgradeError> {
    let running = running_slot()?;
    let _lock = lock()?;
    let now_running = running_release()?;
    let disk = machine::boot_disk(host, machine::state_device())?;
    let env = with_esp(host, &disk.esp, machine::read_env)?;
    env.begin_write(running)
        .map_err(|r| UpgradeError::User(r.to_string()))?;
    let source = source(req.from.as_deref())?;
    let rt = runtime()?;
    let client = open(&rt, source)?;
    let offered = client.releases();
    let release: Release =
        choose(&offered, req.version.as_deref(), &now_running, req.force)?.clone();
    let target = running.other();
    eprintln!(
        "upgrading {} to {} ({:.1} MB) into slot {target}",
        now_running,
        release.id,
        release.size() as f64 / 1e6
    );
    let files = rt.block_on(client.verify(&release))?;
    eprintln!("verified: every file matches the signed metadata");
    // From here on the other slot is written; until it is armed, it is empty.
    change_env(host, &disk.esp, |env| env.begin_write(running))?;
    let bar = corral_update::progress::bytes_bar(release.size(), "writing slot");
    slot::write(
        host,
        disk.slot(target),
        target.partition().name,
        &files,
        &bar,
    )?;
    bar.finish_and_clear();
    let mut record = Record::load(&record_path());
    if record.slot(running).is_none() {
        record.set(
            running,
            Some(SlotRecord {
                version: now_running.version.clone(),
                build_id: now_running.build_id.clone(),
                written_at: 0,
            }),
        );
    }
    record.set(
        target,
        Some(SlotRecord {
            version: release.id.version.clone(),
            build_id: release.id.build_id.clone(),
            written_at: now(),
        }),
    );
    record.trial_failure = None;
    record.services_before = services_running();
    record.save(&record_path())?;
    host.sync();
    change_env(host, &disk.esp, |env| env.arm(running))?;
    // The downloads are in the slot now.
    let _ = std::fs::remove_dir_all(Path::new(STATE_DIR).join("cache"));
    Ok(Done {
        from: now_running,
        to: release.id,
        slot: target,
    })
}

/// The services that run now (asked of the manager); a trial boot must run them again.
fn services_running() -> Vec<String> {
    let socket = Path::new(corral_api::SOCKET);
    let services = crate::api::ask(socket, &corral_api::protocol::Request::ServiceList)
        .and_then(crate::api::decode::<Vec<corral_api::protocol::Service>>);
    match services {
        Ok(list) => list
            .into_iter()
            .filter(|s| s.state == "running")
            .map(|s| s.name)
            .collect(),
        Err(f) => {
            eprintln!(
                "corral: the manager did not list the services ({}); the trial boot checks the console and the user engine only",
                f.message
            );
            Vec::new()
        }
    }
}

/// A release as `corral os list` shows it.
#[derive(Debug, Serialize)]
pub struct Offered {
    pub version: String,
    pub build_id: String,
    pub arch: String,
    pub bytes: u64,
    pub running: bool,
}

/// The releases a repository offers, newest first.
pub fn list(from: Option<&str>) -> Result<Vec<Offered>, UpgradeError> {
    let running = running_release().ok();
    let rt = runtime()?;
    let client = open(&rt, source(from)?)?;
    Ok(client
        .releases()
        .into_iter()
        .map(|r| Offered {
            running: running.as_ref() == Some(&r.id),
            bytes: r.size(),
            version: r.id.version,
            build_id: r.id.build_id,
            arch: r.id.arch,
        })
        .collect())
}

/// One slot in `corral os status`.
#[derive(Debug, Serialize)]
pub struct SlotStatus {
    pub slot: Slot,
    pub version: Option<String>,
    pub build_id: Option<String>,
    pub state: SlotState,
    /// Boots left, for a slot on trial.
    pub tries_left: Option<u8>,
    pub running: bool,
    pub next_boot: bool,
}

/// `corral os status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub slots: Vec<SlotStatus>,
    pub last_rollback: Option<bootstate::Rollback>,
}

/// The slots, which one runs and boots next, and the last rollback.
pub fn status(host: &dyn Host) -> Result<Status, UpgradeError> {
    let running = running_slot()?;
    let disk = machine::boot_disk(host, machine::state_device())?;
    let env: BootEnv = with_esp(host, &disk.esp, machine::read_env)?;
    let record = Record::load(&record_path());
    let now_running = running_release().ok();
    let slots = [Slot::A, Slot::B]
        .into_iter()
        .map(|s| {
            let mut rec = record.slot(s).cloned();
            if s == running {
                if let Some(r) = &now_running {
                    rec = Some(SlotRecord {
                        version: r.version.clone(),
                        build_id: r.build_id.clone(),
                        written_at: 0,
                    });
                }
            }
            SlotStatus {
                slot: s,
                version: rec.as_ref().map(|r| r.version.clone()),
                build_id: rec.map(|r| r.build_id),
                state: env.state(s),
                tries_left: env.trial.filter(|(t, _)| *t == s).map(|(_, n)| n),
                running: s == running,
                next_boot: env.next_boot() == s,
            }
        })
        .collect();
    Ok(Status {
        slots,
        last_rollback: record.last_rollback,
    })
}

/// `corral os status` as a table.
pub fn status_table(s: &Status) -> String {
    let mut out = format!(
        "{:<5} {:<12} {:<14} {:<6} {:<6} {}\n",
        "SLOT", "VERSION", "BUILD", "STATE", "TRIES", "BOOT"
    );
    for slot in &s.slots {
        let state = serde_json::to_value(slot.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let boot = match (slot.running, slot.next_boot) {
            (true, true) => "running, next",
            (true, false) => "running",
            (false, true) => "next",
            (false, false) => "",
        };
        out.push_str(&format!(
            "{:<5} {:<12} {:<14} {:<6} {:<6} {}\n",
            slot.slot.to_string(),
            slot.version.as_deref().unwrap_or("-"),
            slot.build_id.as_deref().unwrap_or("-"),
            state,
            slot.tries_left
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            boot
        ));
    }
    if let Some(r) = &s.last_rollback {
        out.push_str(&format!(
            "last rollback: slot {} ({}) at {}: {}\n",
            r.slot,
            r.version.as_deref().unwrap_or("unknown version"),
            jiff::Timestamp::from_second(r.at as i64)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            r.reason
        ));
    }
    out
}

/// `corral os rollback`: the other slot, if it is good, boots next.
pub fn rollback(host: &dyn Host) -> Result<Slot, UpgradeError> {
    let running = running_slot()?;
    let _lock = lock()?;
    let disk = machine::boot_disk(host, machine::state_device())?;
    Ok(change_env(host, &disk.esp, |env| env.rollback(running))?.next_boot())
}
