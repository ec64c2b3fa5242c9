//! One Docker engine as a child process: its command line, start, readiness through the
//! API, and a clean stop. The system engine's flags come from DESIGN.md: its own socket,
//! data root and exec root, no bridge and no iptables (two engines that both manage
//! iptables flush each other's chains), so system services use the host network.

use crate::containerd::Containerd;
use crate::error::{DockerdError, Result};
use bollard::Docker;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The system engine's default OCI runtime: crun, a C binary that starts each service
/// container sooner than runc (a Go binary) under TCG: the boot's wave of service
/// containers 6.6 s shorter and ssh 7 s sooner in one ISO run (docs/benchmarks.md).
/// It was runc while a system engine restarted after `kill -9` could not start the
/// `docker` service again with crun (the old task's bundle left behind); the manager now
/// kills a dead engine's containers before starting it again
/// ([`crate::leftover::kill_leftover_tasks`]). runc is there for whoever asks
/// (`--runtime runc`).
pub const SYSTEM_RUNTIME: &str = "crun";

/// The OCI runtimes every engine carries besides runc, by name and path: the system
/// engine (`--add-runtime`) and every user engine image (`daemon.json`'s `runtimes`).
pub const RUNTIMES: &[(&str, &str)] = &[("crun", "/usr/bin/crun")];

/// Where an engine lives and how it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSpec {
    /// Name for log lines ("system").
    pub name: String,
    pub program: PathBuf,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    /// dockerd's stdout and stderr go here.
    pub log_file: PathBuf,
    /// Flags after the paths.
    pub extra_args: Vec<String>,
    /// dockerd's environment, besides what it inherits (`HTTP_PROXY` and the like).
    pub environment: Vec<(String, String)>,
}

impl EngineSpec {
    /// The engine's containerd, started before dockerd ([`Engine::start`]).
    pub fn containerd(&self) -> Containerd {
        Containerd::under(&self.data_root, &self.exec_root)
    }

    /// The system engine, as PID 1's manager runs it.
    pub fn system() -> EngineSpec {
        EngineSpec::system_at(Path::new("/"))
    }

    /// The system engine with every path under `root`; tests run it on a private socket.
    pub fn system_at(root: &Path) -> EngineSpec {
        let p = |rel: &str| root.join(rel);
        EngineSpec {
            name: "system".into(),
            program: PathBuf::from("dockerd"),
            socket: p("run/system-docker.sock"),
            data_root: p("var/lib/system-docker"),
            exec_root: p("run/system-docker"),
            pidfile: p("run/system-docker.pid"),
            log_file: p("var/log/system-docker.log"),
            extra_args: [
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                // The user engine owns forwarding; the system engine leaves the sysctl alone.
                "--ip-forward=false",
                "--userland-proxy=false",
                // Socket owned by root:root, mode 0660: root only.
                "--group=root",
            ]
            .map(String::from)
            .into_iter()
            // The user engine's runtimes, and crun as the default (SYSTEM_RUNTIME).
            .chain(
                RUNTIMES
                    .iter()
                    .map(|(name, path)| format!("--add-runtime={name}={path}")),
            )
            .chain([format!("--default-runtime={SYSTEM_RUNTIME}")])
            .collect(),
            environment: vec![("SSL_CERT_DIR".into(), crate::SSL_CERT_DIR.into())],
        }
    }

    /// This spec with `runtime` as its default OCI runtime instead of [`SYSTEM_RUNTIME`].
    pub fn with_default_runtime(mut self, runtime: &str) -> EngineSpec {
        self.extra_args
            .retain(|a| !a.starts_with("--default-runtime="));
        self.extra_args.push(format!("--default-runtime={runtime}"));
        self
    }

    /// This spec as the system engine runs on a build or test host rather than in Corral.
    /// Corral mounts cgroup v2 alone; a host whose cgroups are hybrid (v1 hierarchies
    /// beside a v2 one that holds a controller, as on CI's machines) makes Debian 12's crun
    /// refuse every container ("cgroups in hybrid mode not supported"), so there its
    /// containers run with runc. Hosts with cgroup v2 alone keep crun.
    pub fn for_build_host(self) -> EngineSpec {
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            self
        } else {
            self.with_default_runtime("runc")
        }
    }

    /// dockerd's arguments.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--host=unix://{}", self.socket.display()),
            format!("--data-root={}", self.data_root.display()),
            format!("--exec-root={}", self.exec_root.display()),
            format!("--pidfile={}", self.pidfile.display()),
            format!("--containerd={}", self.containerd().socket.display()),
        ];
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// How often an adopted process is looked at to see whether it still runs.
const ADOPTED_POLL: Duration = Duration::from_millis(250);
/// After this long without an answer from containerd, the log says the engine waits.
const CONTAINERD_SLOW: Duration = Duration::from_secs(15);
/// How long containerd gets to stop once dockerd has gone, at least (the manager's
/// stop of a dead dockerd's containerd, a leftover one's, and [`Engine::stop`]'s).
pub const CONTAINERD_STOP: Duration = Duration::from_secs(5);

/// A running engine: dockerd and the containerd it was started on.
pub struct Engine {
    pub spec: EngineSpec,
    process: Process,
    /// None when an adopted dockerd's containerd no longer runs (dockerd then fails
    /// and exits; its next start starts both).
    containerd: Option<Process>,
}

enum Process {
    /// Started by this process, which waits for it.
    Child(Child),
    /// Started by an earlier manager that was killed: re-parented to PID 1, which reaps
    /// it; watched through /proc.
    Adopted(Pid),
}

impl Process {
    fn pid(&self) -> Option<u32> {
        match self {
            Process::Child(child) => child.id(),
            Process::Adopted(pid) => u32::try_from(pid.as_raw()).ok(),
        }
    }

    /// Waits until it exits: its exit code, or -1 for a signal or an adopted process.
    async fn wait(&mut self) -> i32 {
        match self {
            Process::Child(child) => child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1),
            Process::Adopted(pid) => {
                while runs(*pid) {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
                -1
            }
        }
    }

    /// SIGTERM, then SIGKILL after `timeout`; true when it stopped on the SIGTERM.
    async fn stop(&mut self, timeout: Duration) -> bool {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        if tokio::time::timeout(timeout, self.wait()).await.is_ok() {
            return true;
        }
        self.kill(timeout).await;
        false
    }

    /// SIGKILL; true when it is gone (an adopted one is waited for up to `within`).
    async fn kill(&mut self, within: Duration) -> bool {
        match self {
            Process::Child(child) => child.kill().await.is_ok(),
            Process::Adopted(pid) => {
                let _ = kill(*pid, Signal::SIGKILL);
                tokio::time::timeout(within, self.wait()).await.is_ok()
            }
        }
    }
}

/// The engine's log, opened for appending (dockerd's and containerd's output): one
/// handle for stdout, one for stderr.
fn open_log(spec: &EngineSpec) -> Result<(std::fs::File, std::fs::File)> {
    let log_err = |source| DockerdError::EngineLog {
        engine: spec.name.clone(),
        path: spec.log_file.clone(),
        source,
    };
    if let Some(dir) = spec.log_file.parent() {
        std::fs::create_dir_all(dir).map_err(log_err)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_file)
        .map_err(log_err)?;
    let log2 = log.try_clone().map_err(log_err)?;
    Ok((log, log2))
}

/// Starts `program` with `args`, its output appended to the engine's log.
fn spawn(spec: &EngineSpec, program: &Path, args: &[String]) -> Result<Child> {
    let (log, log2) = open_log(spec)?;
    Command::new(program)
        .args(args)
        .envs(spec.environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DockerdError::StartEngine {
            engine: spec.name.clone(),
            program: program.to_path_buf(),
            source,
        })
}

/// Starts the engine's containerd and waits until it accepts connections, however long
/// that takes; an error when it exits first.
async fn start_containerd(spec: &EngineSpec) -> Result<Child> {
    let containerd = spec.containerd();
    containerd
        .prepare()
        .map_err(|source| DockerdError::Containerd {
            engine: spec.name.clone(),
            path: containerd.config.clone(),
            source,
        })?;
    let args = [
        "--config".to_string(),
        containerd.config.display().to_string(),
    ];
    let mut child = spawn(spec, Path::new("containerd"), &args)?;
    if let Some(pid) = child.id() {
        // As dockerd does for its own: how a dead engine's containerd is found.
        if let Err(e) = std::fs::write(&containerd.pidfile, pid.to_string()) {
            log::warn!("writing '{}': {e}", containerd.pidfile.display());
        }
    }
    let started = Instant::now();
    let mut said = false;
    while !containerd.listening() {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_file(&containerd.pidfile);
            return Err(DockerdError::ContainerdExited {
                engine: spec.name.clone(),
                code: status.code().unwrap_or(-1),
                log: spec.log_file.clone(),
            });
        }
        if !said && started.elapsed() >= CONTAINERD_SLOW {
            log::warn!(
                "the {} engine's containerd has not answered for {}s (a busy machine, or \
                 cleaning up after a dead engine's tasks); still waiting",
                spec.name,
                CONTAINERD_SLOW.as_secs()
            );
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(child)
}

impl Engine {
    /// Starts the engine's containerd, waits until it answers (without dockerd's 15 s
    /// limit: [`crate::containerd`]), then dockerd pointed at it. Both write to the
    /// spec's log file. Cancelling the start (dropping the future) kills what it started.
    pub async fn start(spec: &EngineSpec) -> Result<Engine> {
        let mut containerd = Process::Child(start_containerd(spec).await?);
        match spawn(spec, &spec.program, &spec.args()) {
            Ok(child) => Ok(Engine {
                spec: spec.clone(),
                process: Process::Child(child),
                containerd: Some(containerd),
            }),
            Err(e) => {
                containerd.stop(CONTAINERD_STOP).await;
                let _ = std::fs::remove_file(spec.containerd().pidfile);
                Err(e)
            }
        }
    }

    /// The engine an earlier manager started, when it still runs: the pid in the spec's
    /// pid file, alive, and running with this spec's pid file; with it, its containerd
    /// when the containerd pid file names a live containerd with this spec's
    /// configuration. A manager that is killed (SIGKILL, the OOM killer) leaves its
    /// dockerd running with every service in it; the next manager takes it over rather
    /// than start a second one, which would exit on the pid file.
    pub fn adopt(spec: &EngineSpec) -> Option<Engine> {
        let flag = format!("--pidfile={}", spec.pidfile.display());
        let pid = live_with_arg(&spec.pidfile, &flag)?;
        Some(Engine {
            spec: spec.clone(),
            process: Process::Adopted(pid),
            containerd: live_containerd(spec).map(Process::Adopted),
        })
    }

    /// Whether this engine was started by an earlier manager ([`Engine::adopt`]).
    pub fn adopted(&self) -> bool {
        matches!(self.process, Process::Adopted(_))
    }

    /// dockerd's pid.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Waits until dockerd exits. Returns its exit code, or -1 when a signal ended it
    /// or the code is not this process's to see (an adopted engine's parent is PID 1).
    /// A containerd that exits meanwhile is started again, as dockerd does with its own
    /// (dockerd reconnects; the containers run on).
    pub async fn wait(&mut self) -> i32 {
        loop {
            let Some(containerd) = self.containerd.as_mut() else {
                return self.process.wait().await;
            };
            tokio::select! {
                code = self.process.wait() => return code,
                code = containerd.wait() => {
                    self.containerd = None;
                    log::warn!(
                        "the {} engine's containerd exited with code {code}; starting it again",
                        self.spec.name
                    );
                    match start_containerd(&self.spec).await {
                        Ok(child) => self.containerd = Some(Process::Child(child)),
                        Err(e) => {
                            log::error!("{e}; stopping dockerd to start both again");
                            if let Some(pid) = self.pid() {
                                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Stops the containerd this engine ran on, once dockerd has gone: SIGTERM, then
    /// SIGKILL after `timeout`.
    pub async fn stop_containerd(&mut self, timeout: Duration) {
        if let Some(mut containerd) = self.containerd.take() {
            if !containerd.stop(timeout).await {
                log::warn!(
                    "the {} engine's containerd did not stop within {}s; killed it",
                    self.spec.name,
                    timeout.as_secs()
                );
            }
            let _ = std::fs::remove_file(self.spec.containerd().pidfile);
        }
    }

    /// Stops the engine: dockerd with SIGTERM, then SIGKILL after `timeout`, then its
    /// containerd with what is left of `timeout` (at least 5 s). dockerd stops its
    /// containers on SIGTERM within its own shutdown timeout (15 s by default), so
    /// `timeout` should exceed that.
    pub async fn stop(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        if self.process.stop(timeout).await {
            log::info!("{} engine stopped", self.spec.name);
        } else {
            log::warn!(
                "{} engine did not stop within {}s; killed it",
                self.spec.name,
                timeout.as_secs()
            );
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.stop_containerd(left.max(CONTAINERD_STOP)).await;
    }

    /// Kills dockerd (SIGKILL) without letting it tear its containers down, then stops
    /// its containerd as [`Engine::stop_containerd`] does: for the machine's way down once
    /// every container's process has exited, when that teardown is work nobody needs.
    /// The store is crash-consistent: the next start finds those containers' tasks gone.
    pub async fn kill(&mut self) {
        if self.process.kill(CONTAINERD_STOP).await {
            log::info!("{} engine's dockerd killed", self.spec.name);
        } else {
            log::warn!(
                "{} engine's dockerd: SIGKILL did not end it",
                self.spec.name
            );
        }
        self.stop_containerd(CONTAINERD_STOP).await;
    }
}

/// The engine's containerd when one runs that no [`Engine`] here holds: the pid in its
/// pid file, alive, started with the engine's containerd configuration.
pub(crate) fn live_containerd(spec: &EngineSpec) -> Option<Pid> {
    let containerd = spec.containerd();
    live_with_arg(
        &containerd.pidfile,
        &containerd.config.display().to_string(),
    )
}

/// Stops a process this one did not start (PID 1 is its parent and reaps it): SIGTERM,
/// then SIGKILL after `timeout`; true when it stopped on the SIGTERM.
pub(crate) async fn stop_adopted(pid: Pid, timeout: Duration) -> bool {
    Process::Adopted(pid).stop(timeout).await
}

/// The pid in `pidfile` when it names a live process (not PID 1) one of whose
/// arguments is `arg`.
fn live_with_arg(pidfile: &Path, arg: &str) -> Option<Pid> {
    let pid: i32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    if pid <= 1 {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if !cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()) {
        return None;
    }
    let pid = Pid::from_raw(pid);
    runs(pid).then_some(pid)
}

/// Whether `pid` runs: it exists and is not a zombie waiting to be reaped.
pub fn runs(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // After the command name, which may itself hold ") ".
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Connects to an engine's socket, with the API version negotiated down to what the
/// engine speaks (Debian 12's dockerd 20.10 speaks 1.41).
pub async fn connect(spec: &EngineSpec) -> Result<Docker> {
    connect_to(&spec.name, &spec.socket).await
}

/// [`connect`] to an engine the manager does not run itself: `name` for messages.
pub async fn connect_to(name: &str, socket: &Path) -> Result<Docker> {
    let api = |source| DockerdError::Api {
        engine: name.to_string(),
        socket: socket.to_path_buf(),
        source,
    };
    let path = socket.to_string_lossy();
    let docker =
        Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION).map_err(api)?;
    docker.negotiate_version().await.map_err(api)
}

/// Waits until the engine answers `/_ping`, polling every 50 ms. Returns a connected client.
pub async fn wait_ready(spec: &EngineSpec, within: Duration) -> Result<Docker> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(docker) = connect(spec).await {
            if docker.ping().await.is_ok() {
                return Ok(docker);
            }
        }
        if Instant::now() >= deadline {
            return Err(DockerdError::NotReady {
                engine: spec.name.clone(),
                socket: spec.socket.clone(),
                seconds: within.as_secs(),
                log: spec.log_file.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_engine_has_its_own_paths_and_no_bridge_or_iptables() {
        let args = EngineSpec::system().args();
        for want in [
            "--host=unix:///run/system-docker.sock",
            "--data-root=/var/lib/system-docker",
            "--exec-root=/run/system-docker",
            "--bridge=none",
            "--iptables=false",
            "--add-runtime=crun=/usr/bin/crun",
            "--default-runtime=crun",
        ] {
            assert!(
                args.iter().any(|a| a == want),
                "{want} missing from {args:?}"
            );
        }
    }

    #[test]
    fn another_default_runtime_replaces_crun() {
        let args = EngineSpec::system().with_default_runtime("runc").args();
        let defaults: Vec<_> = args
            .iter()
            .filter(|a| a.starts_with("--default-runtime="))
            .collect();
        assert_eq!(defaults, ["--default-runtime=runc"], "{args:?}");
        assert!(args.iter().any(|a| a == "--add-runtime=crun=/usr/bin/crun"));
    }

    #[test]
    fn only_a_live_dockerd_with_the_spec_s_pid_file_is_adopted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let spec = EngineSpec::system_at(tmp.path());
        std::fs::create_dir_all(spec.pidfile.parent().expect("run dir")).expect("mkdir");
        assert!(Engine::adopt(&spec).is_none(), "no pid file");
        // This test process is alive but is not dockerd with that pid file.
        std::fs::write(&spec.pidfile, std::process::id().to_string()).expect("write");
        assert!(Engine::adopt(&spec).is_none(), "another program");
        for junk in ["", "x", "1", "-5", "99999999999"] {
            std::fs::write(&spec.pidfile, junk).expect("write");
            assert!(Engine::adopt(&spec).is_none(), "{junk:?}");
        }
        assert!(runs(Pid::this()));
        assert!(!runs(Pid::from_raw(i32::MAX)));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let reaped = Pid::from_raw(child.id() as i32);
        child.wait().expect("reap");
        assert!(!runs(reaped), "a reaped child");
    }

    #[test]
    fn paths_move_under_a_test_root() {
        let spec = EngineSpec::system_at(Path::new("/tmp/x"));
        assert_eq!(spec.socket, Path::new("/tmp/x/run/system-docker.sock"));
        assert_eq!(spec.data_root, Path::new("/tmp/x/var/lib/system-docker"));
    }
}
