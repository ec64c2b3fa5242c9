//! A way in when the console does not run: getty and sshd live only in the console
//! container, so a dead system engine, a broken console image or a bad console override
//! in the configuration would leave nobody able to log in, even on the local console.
//! When the console has not been running for `corral.rescue_after` seconds (120 by
//! default; 0 turns this off; time while its image is still being loaded or pulled does
//! not count), the manager runs the console's own program, `corral
//! console-init`, on the host: chrooted into the console image's files, read straight
//! from the image store on the root's squashfs (no engine needed), over a tmpfs, with the
//! host paths the console service shares (`/dev`, `/proc`, `/sys`, `/run`, `/home`,
//! `/var/lib/corral`, `/var/log`) and copies of the host's `/etc/hosts`, `/etc/hostname`
//! and `/etc/resolv.conf`, as Docker gives the console. The same keys, host keys, port
//! and gettys, so users get in the way they always do; the log says why. It is stopped
//! when the console runs again.

use bollard::Docker;
use corral_dockerd::engine::EngineSpec;
use corral_host::sys::Sys;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Where the rescue console's root is put together (on /run, a tmpfs).
pub const RESCUE_DIR: &str = "/run/corral/rescue";
/// How often the console's state is looked at.
const POLL: Duration = Duration::from_secs(5);
/// How long after a rescue console that could not start the next try is.
const RETRY: Duration = Duration::from_secs(60);
/// How long the rescue console gets to stop before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// Host paths shared with the rescue console, as the console service shares them
/// (`os-config.yml`), and whether their submounts come too.
const SHARED: &[(&str, bool)] = &[
    ("/dev", true),
    ("/proc", true),
    ("/sys", true),
    ("/run", false),
    ("/home", false),
    ("/var/lib/corral", false),
    ("/var/log", false),
    ("/lib/modules", false),
];

/// The host's files a container on the host network gets a copy of from Docker, copied
/// into the rescue console's root the same way: without the host's `/etc/hosts`, sudo
/// in the rescue console could not look the machine's own name up ("unable to resolve
/// host") and printed that on every command.
const HOST_FILES: &[&str] = &["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// The console image, whose files the rescue console runs from.
fn console_image() -> String {
    format!("corral/console:{}", env!("CARGO_PKG_VERSION"))
}

/// What the console is doing, as far as the manager can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    Running,
    /// Not running, and why.
    Down(String),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Wait,
    Start(String),
    Stop,
}

/// Decides from the console's state, how long it has been down, and whether the rescue
/// console runs.
pub fn decide(console: &Console, down_for: Duration, after: Duration, active: bool) -> Step {
    match (console, active) {
        (Console::Running, true) => Step::Stop,
        (Console::Down(why), false) if down_for >= after => Step::Start(why.clone()),
        _ => Step::Wait,
    }
}

/// The console's state, through the system engine's API, within a few seconds.
async fn console_state(spec: &EngineSpec) -> Console {
    let ask = async {
        let docker: Docker = corral_dockerd::engine::connect(spec)
            .await
            .map_err(|_| "the system engine does not answer".to_string())?;
        match docker.inspect_container("console", None).await {
            Ok(c) => {
                let state = c.state.unwrap_or_default();
                if state.running.unwrap_or(false) {
                    return Ok(());
                }
                let status = state.status.map(|s| s.to_string()).unwrap_or_default();
                let error = state.error.filter(|e| !e.is_empty());
                Err(match error {
                    Some(e) => format!("the console's container is {status}: {e}"),
                    None => format!(
                        "the console's container is {status} (exit code {})",
                        state.exit_code.unwrap_or(-1)
                    ),
                })
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Err("the console service was never created (the log says why)".to_string()),
            Err(e) => Err(format!("the system engine: {e}")),
        }
    };
    match tokio::time::timeout(POLL, ask).await {
        Ok(Ok(())) => Console::Running,
        Ok(Err(why)) => Console::Down(why),
        Err(_) => Console::Down("the system engine does not answer".to_string()),
    }
}

/// Puts the rescue console's root together under `dir`: the image's layers under a
/// tmpfs-backed overlay (made private, so nothing mounted in it reaches other
/// namespaces), and the shared host paths bound in. Returns the root.
///
/// A bind of a shared mount joins the source's peer group, and an unmount propagates
/// to peers: taking apart a root whose `/sys` copy was still shared would unmount the
/// host's `/sys/fs/cgroup` too (and no container could start again). So once bound,
/// the copies are made slaves: the host's mounts still show in the rescue console,
/// nothing done in it reaches the host. A host path that is not there yet (the first
/// boot's `/var/lib/corral` before the configuration ran) is made, as the console
/// service's volumes would be.
pub fn prepare(sys: &dyn Sys, dir: &Path, layers: &[PathBuf]) -> corral_host::Result<PathBuf> {
    let (root, upper, work) = (dir.join("root"), dir.join("upper"), dir.join("work"));
    for d in [&root, &upper, &work] {
        sys.mkdir_all(d)?;
    }
    let lower: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    sys.mount(
        Some("overlay"),
        &root,
        Some("overlay"),
        MsFlags::empty(),
        Some(&options),
    )?;
    sys.mount(
        None,
        &root,
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    for (path, recursive) in SHARED {
        let target = root.join(path.trim_start_matches('/'));
        sys.mkdir_all(&target)?;
        let flags = if *recursive {
            MsFlags::MS_BIND | MsFlags::MS_REC
        } else {
            MsFlags::MS_BIND
        };
        sys.mkdir_all(Path::new(path))?;
        sys.mount(Some(path), &target, None, flags, None)?;
    }
    sys.mount(None, &root, None, MsFlags::MS_REC | MsFlags::MS_SLAVE, None)?;
    for file in HOST_FILES {
        let copy = root.join(file.trim_start_matches('/'));
        // The image's own file stays when the host has none or it cannot be read.
        match sys.read_to_string(Path::new(file)) {
            Ok(text) => {
                if let Err(e) = sys.write(&copy, &text) {
                    log::warn!("rescue console: {e}");
                }
            }
            Err(e) if sys.exists(Path::new(file)) => log::warn!("rescue console: {e}"),
            Err(_) => {}
        }
    }
    Ok(root)
}

/// Takes the rescue console's root apart: a lazy unmount takes its submounts along (the
/// host's `/home`, `/var/lib/corral`, ...). Nothing under the root is ever removed
/// recursively: were anything still mounted there, it would be the host's files.
fn teardown(sys: &dyn Sys, dir: &Path) {
    let root = dir.join("root");
    // First out of every peer group (a root left half made by a failed preparation, or
    // by an older manager, may still have shared copies), so that the unmount below
    // reaches nothing of the host's.
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    if let Err(e) = sys.mount(None, &root, None, private, None) {
        log::debug!("{e}");
    }
    if let Err(e) = sys.umount(&root, MntFlags::MNT_DETACH) {
        log::debug!("{e}");
    }
    if std::fs::remove_dir(&root).is_err() && root.exists() {
        log::warn!(
            "{} is not empty after it was unmounted; left in place",
            root.display()
        );
        return;
    }
    for scratch in ["upper", "work"] {
        let _ = std::fs::remove_dir_all(dir.join(scratch));
    }
    let _ = std::fs::remove_file(dir.join("pid"));
    let _ = std::fs::remove_dir(dir);
}

/// A running rescue console.
struct Rescue {
    child: tokio::process::Child,
}

impl Rescue {
    async fn start() -> Result<Rescue, String> {
        let seed = crate::system_engine::seed_on_squashfs();
        let seed = if seed.is_dir() {
            seed
        } else {
            PathBuf::from(corral_dockerd::seed::SEED_DIR)
        };
        let dir = PathBuf::from(RESCUE_DIR);
        let root = tokio::task::spawn_blocking(move || {
            let layers =
                corral_dockerd::seed::layers(&seed, &console_image()).map_err(|e| e.to_string())?;
            teardown(&corral_host::sys::Linux, &dir);
            prepare(&corral_host::sys::Linux, &dir, &layers).map_err(|e| {
                teardown(&corral_host::sys::Linux, &dir);
                e.to_string()
            })
        })
        .await
        .map_err(|e| e.to_string())??;
        let root = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
            .map_err(|e| e.to_string())?;
        let mut command = tokio::process::Command::new("/usr/bin/corral");
        command
            .arg("console-init")
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .kill_on_drop(true);
        // SAFETY: between fork and exec only async-signal-safe calls (chroot, chdir) on
        // strings made before the fork.
        unsafe {
            command.pre_exec(move || {
                if nix::libc::chroot(root.as_ptr()) != 0 || nix::libc::chdir(c"/".as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting corral console-init in {RESCUE_DIR}/root: {e}"))?;
        if let Some(pid) = child.id() {
            let _ = std::fs::write(Path::new(RESCUE_DIR).join("pid"), pid.to_string());
        }
        Ok(Rescue { child })
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        if tokio::time::timeout(STOP_WITHIN, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = tokio::task::spawn_blocking(|| {
            teardown(&corral_host::sys::Linux, Path::new(RESCUE_DIR))
        })
        .await;
    }
}

/// A rescue console left by a manager that was killed: stopped, its root taken apart.
async fn stop_leftover() {
    let pidfile = Path::new(RESCUE_DIR).join("pid");
    let Some(pid) = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .filter(|p| *p > 1)
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if cmdline.windows(12).any(|w| w == b"console-init") {
        let pid = Pid::from_raw(pid);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_WITHIN;
        while kill(pid, None).is_ok() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = kill(pid, Signal::SIGKILL);
    }
    let _ =
        tokio::task::spawn_blocking(|| teardown(&corral_host::sys::Linux, Path::new(RESCUE_DIR)))
            .await;
}

/// Watches the console until `quiet` turns true, running the rescue console while the
/// console has been down for `after` or longer. When the rescue console cannot start
/// either, it is tried again every [`RETRY`], and with `emergency_shell`
/// (`corral.recovery=shell` on the kernel command line) a root shell opens on the
/// machine's console meanwhile.
pub async fn watch(
    spec: EngineSpec,
    mut quiet: watch::Receiver<bool>,
    after: Duration,
    emergency_shell: bool,
) {
    stop_leftover().await;
    let mut down_since = Instant::now();
    let mut rescue: Option<Rescue> = None;
    let mut retry_at: Option<Instant> = None;
    let mut shell: Option<crate::emergency::Shell> = None;
    let mut told = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = quiet.changed() => break,
        }
        let console = console_state(&spec).await;
        // A console whose image is still loading or being pulled is not down yet: its
        // time counts from the end of that.
        if console == Console::Running || crate::consoles::fetching() {
            down_since = Instant::now();
        }
        match decide(&console, down_since.elapsed(), after, rescue.is_some()) {
            Step::Wait => {}
            Step::Start(_) if retry_at.is_some_and(|at| Instant::now() < at) => {}
            Step::Start(why) => {
                log::error!(
                    "the console has not run for {}s: {why}; starting the rescue console on \
                     the host (sshd and the gettys, the same keys and port)",
                    down_since.elapsed().as_secs()
                );
                match Rescue::start().await {
                    Ok(r) => {
                        rescue = Some(r);
                        retry_at = None;
                        // The rescue console's getty takes the console over: one reader.
                        if shell.take().is_some() {
                            log::warn!(
                                "the rescue console runs: the root shell on the console is \
                                 closed (log in at its getty)"
                            );
                        }
                    }
                    Err(e) => {
                        log::error!("rescue console: {e}; trying again in {}s", RETRY.as_secs());
                        retry_at = Some(Instant::now() + RETRY);
                        let why = format!("no console and no rescue console ({e})");
                        if !emergency_shell {
                            if !std::mem::replace(&mut told, true) {
                                log::error!(
                                    "{why}: no way in; `corral.recovery=shell` on the kernel \
                                     command line opens a root shell on the console then"
                                );
                            }
                        } else if !shell.as_mut().is_some_and(|s| s.is_open()) {
                            match crate::emergency::Shell::open(&why) {
                                Ok(s) => {
                                    log::error!("{why}: a root shell is open on the console");
                                    shell = Some(s);
                                }
                                Err(e) => log::error!("no shell on the console either: {e}"),
                            }
                        }
                    }
                }
            }
            Step::Stop => {
                if let Some(r) = rescue.take() {
                    r.stop().await;
                    log::info!("the console runs again; the rescue console is stopped");
                }
            }
        }
    }
    if let Some(r) = rescue.take() {
        r.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_host::sys::fake::{Call, FakeSys};

    #[test]
    fn the_rescue_starts_only_after_the_console_was_down_long_enough_and_stops_when_it_runs() {
        let down = Console::Down("the system engine does not answer".into());
        let after = Duration::from_secs(120);
        let s = Duration::from_secs;
        assert_eq!(
            decide(&down, s(30), after, false),
            Step::Wait,
            "a slow boot"
        );
        assert_eq!(
            decide(&down, s(120), after, false),
            Step::Start("the system engine does not answer".into())
        );
        assert_eq!(
            decide(&down, s(500), after, true),
            Step::Wait,
            "already running"
        );
        assert_eq!(decide(&Console::Running, s(0), after, true), Step::Stop);
        assert_eq!(decide(&Console::Running, s(0), after, false), Step::Wait);
    }

    #[test]
    fn taking_apart_never_removes_what_is_still_under_the_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("rescue");
        // As if the unmount had not happened: the host's files still show under root.
        std::fs::create_dir_all(dir.join("root/home/corral")).expect("mkdir");
        std::fs::write(dir.join("root/home/corral/notes"), "keep").expect("write");
        std::fs::create_dir_all(dir.join("upper/etc")).expect("mkdir");
        let sys = FakeSys::default();
        teardown(&sys, &dir);
        assert_eq!(
            std::fs::read_to_string(dir.join("root/home/corral/notes")).expect("kept"),
            "keep"
        );
        // Out of every peer group before the unmount, so it reaches nothing of the host.
        let calls = sys.calls();
        let private = calls.iter().position(|c| {
            matches!(c, Call::Mount { source: None, target, flags, .. }
                if *target == dir.join("root") && *flags == MsFlags::MS_REC | MsFlags::MS_PRIVATE)
        });
        let unmount = calls
            .iter()
            .position(|c| *c == Call::Umount(dir.join("root")));
        assert!(
            matches!((private, unmount), (Some(p), Some(u)) if p < u),
            "{calls:?}"
        );
        // Once the root is empty (unmounted), everything goes.
        std::fs::remove_dir_all(dir.join("root/home")).expect("rm");
        teardown(&FakeSys::default(), &dir);
        assert!(!dir.exists());
    }

    #[test]
    fn the_root_is_the_image_over_a_private_overlay_with_the_host_paths_bound_in() {
        let sys = FakeSys::default()
            .with_file("/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 upgrades\n")
            .with_file("/etc/hostname", "upgrades\n");
        let dir = Path::new("/run/corral/rescue");
        let layers = [PathBuf::from("/seed/overlay2/a/diff")];
        let root = prepare(&sys, dir, &layers).expect("prepared");
        assert_eq!(root, dir.join("root"));
        // The host's name files copied in (sudo looks the name up); no resolv.conf on
        // this host, so the image's stays.
        let files = sys.files.borrow();
        assert_eq!(
            files.get(&root.join("etc/hosts")).map(String::as_str),
            Some("127.0.0.1 localhost\n127.0.1.1 upgrades\n")
        );
        assert_eq!(
            files.get(&root.join("etc/hostname")).map(String::as_str),
            Some("upgrades\n")
        );
        assert!(!files.contains_key(&root.join("etc/resolv.conf")));
        drop(files);
        let mounts: Vec<(Option<String>, PathBuf, MsFlags, Option<String>)> = sys
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mount {
                    source,
                    target,
                    flags,
                    data,
                    ..
                } => Some((source, target, flags, data)),
                _ => None,
            })
            .collect();
        assert_eq!(
            mounts[0].3.as_deref(),
            Some(
                "lowerdir=/seed/overlay2/a/diff,upperdir=/run/corral/rescue/upper,\
                 workdir=/run/corral/rescue/work"
            )
        );
        assert_eq!(mounts[1].2, MsFlags::MS_REC | MsFlags::MS_PRIVATE);
        assert!(mounts.contains(&(
            Some("/home".into()),
            root.join("home"),
            MsFlags::MS_BIND,
            None
        )));
        assert!(mounts.contains(&(
            Some("/dev".into()),
            root.join("dev"),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None
        )));
        assert_eq!(mounts.len(), 3 + SHARED.len());
        // Every copy of a host mount is a slave once bound, so unmounting it never
        // unmounts the host's (the last mount, after every bind).
        assert_eq!(
            mounts.last(),
            Some(&(
                None,
                root.clone(),
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None
            ))
        );
        // A host path not made yet is made before it is bound.
        assert!(sys
            .calls()
            .contains(&Call::Mkdir(PathBuf::from("/var/lib/corral"))));
        // A failed mount stops the preparation.
        let failing = FakeSys::default().failing("/run/corral/rescue/root/home");
        assert!(prepare(&failing, dir, &layers).is_err());
    }
}
