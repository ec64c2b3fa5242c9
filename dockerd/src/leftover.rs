//! What an engine that died (`kill -9`, a crash) leaves behind, cleared before the
//! manager starts it again: a containerd a killed manager started for it, still running
//! and re-parented to PID 1 (a new one would wait on its store's lock), and the
//! processes of the containers it ran, which outlive both.
//!
//! The containers are killed rather than left for the next containerd to take over:
//! the system engine runs without live-restore, so the new dockerd would stop them
//! anyway, and taking over a live task depends on the runtime answering containerd's
//! `ps` for it. crun answers with no processes for a container whose own cgroup is
//! empty and whose processes are in child cgroups (the `docker` service's nested user
//! engine), and containerd 1.7 then gives the task up half-way and leaves its bundle,
//! so the service's next start failed with "mkdir .../moby/<id>: file exists". A task
//! whose processes are gone while containerd was away is the ordinary case: its shim
//! keeps the exit status and the next containerd cleans the task up.

use crate::engine::EngineSpec;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Where cgroup v2 is mounted on the host.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// How much of a bundle's OCI config is read (containerd writes them; a few KiB).
const MAX_CONFIG: u64 = 1 << 20;
/// How long a killed task's cgroup may take to empty.
const EMPTY_WITHIN: Duration = Duration::from_secs(5);

/// The containerd named by the engine's containerd pid file, when it still runs with
/// the engine's configuration and no [`crate::engine::Engine`] holds it (a manager
/// killed after starting it, before or after its dockerd died): a new containerd would
/// wait on its store's lock. Stop it first: SIGTERM, then SIGKILL after 5 s. Returns
/// the pid stopped, if any.
pub async fn stop_leftover_containerd(spec: &EngineSpec) -> Option<i32> {
    let pid = crate::engine::live_containerd(spec)?;
    log::warn!(
        "stopping the {} engine's leftover containerd (pid {pid})",
        spec.name
    );
    crate::engine::stop_adopted(pid, crate::engine::CONTAINERD_STOP).await;
    Some(pid.as_raw())
}

/// The folder of the bundles of the tasks an engine's containerd runs (dockerd's
/// namespace `moby`): one folder per container, with its OCI `config.json`.
pub fn task_bundles(spec: &EngineSpec) -> PathBuf {
    spec.containerd()
        .state
        .join("io.containerd.runtime.v2.task/moby")
}

/// The cgroup of each task whose bundle is under `bundles`, under `cgroup_root`: the
/// bundle's `linux.cgroupsPath` (dockerd's cgroupfs driver gives `/docker/<id>`). A
/// bundle whose config cannot be read, or whose path is not an absolute path down the
/// tree (a systemd `slice:prefix:name`, `..`), is skipped with a warning.
pub fn task_cgroups(bundles: &Path, cgroup_root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(bundles) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let config = entry.path().join("config.json");
        match cgroup_of(&config) {
            Ok(path) => out.push(cgroup_root.join(path)),
            Err(why) => log::warn!("leftover task '{}': {why}", entry.path().display()),
        }
    }
    out.sort();
    out
}

/// `linux.cgroupsPath` of the OCI config at `config`, relative to the cgroup root.
fn cgroup_of(config: &Path) -> Result<PathBuf, String> {
    use std::io::Read;
    let file = std::fs::File::open(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut text = String::new();
    file.take(MAX_CONFIG)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", config.display()))?;
    let path = json["linux"]["cgroupsPath"]
        .as_str()
        .ok_or_else(|| format!("{}: no linux.cgroupsPath", config.display()))?;
    let relative = Path::new(path)
        .strip_prefix("/")
        .map_err(|_| format!("cgroupsPath '{path}' is not an absolute path"))?;
    if relative.as_os_str().is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(format!(
            "cgroupsPath '{path}' does not name a cgroup below the root"
        ));
    }
    Ok(relative.to_path_buf())
}

/// Kills every process of the tasks the dead engine's containerd left running, each
/// task's whole cgroup subtree at once (`cgroup.kill`: a nested engine's containers
/// too), and waits up to 5 s for each cgroup to empty. Run after
/// [`stop_leftover_containerd`]; the tasks' shims stay (see the module docs). Returns
/// the cgroups killed.
pub async fn kill_leftover_tasks(spec: &EngineSpec, cgroup_root: &Path) -> Vec<PathBuf> {
    let cgroups = task_cgroups(&task_bundles(spec), cgroup_root);
    let mut killed = Vec::new();
    for cgroup in cgroups {
        if !cgroup.join("cgroup.procs").exists() {
            continue;
        }
        match std::fs::write(cgroup.join("cgroup.kill"), "1") {
            Ok(()) => killed.push(cgroup),
            Err(e) => log::warn!(
                "killing the {} engine's leftover task '{}': {e}",
                spec.name,
                cgroup.display()
            ),
        }
    }
    if !killed.is_empty() {
        log::warn!(
            "killed the {} engine's {} leftover containers",
            spec.name,
            killed.len()
        );
    }
    let deadline = tokio::time::Instant::now() + EMPTY_WITHIN;
    for cgroup in &killed {
        while !is_empty(cgroup) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    killed
}

/// No process left in `cgroup` or below it (`cgroup.events`' `populated 0`, or the
/// cgroup gone).
fn is_empty(cgroup: &Path) -> bool {
    match std::fs::read_to_string(cgroup.join("cgroup.events")) {
        Ok(events) => events.lines().any(|l| l.trim() == "populated 0"),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(bundles: &Path, id: &str, config: &str) {
        let dir = bundles.join(id);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("config.json"), config).expect("config");
    }

    #[test]
    fn each_bundle_names_its_cgroup_and_odd_paths_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bundles = dir.path().join("moby");
        bundle(&bundles, "a", r#"{"linux": {"cgroupsPath": "/docker/a"}}"#);
        bundle(&bundles, "b", r#"{"linux": {"cgroupsPath": "/docker/b"}}"#);
        bundle(
            &bundles,
            "up",
            r#"{"linux": {"cgroupsPath": "/docker/../../etc"}}"#,
        );
        bundle(&bundles, "root", r#"{"linux": {"cgroupsPath": "/"}}"#);
        bundle(
            &bundles,
            "systemd",
            r#"{"linux": {"cgroupsPath": "system.slice:docker:c"}}"#,
        );
        bundle(&bundles, "none", r#"{"linux": {}}"#);
        bundle(&bundles, "broken", "{");
        std::fs::create_dir_all(bundles.join("no-config")).expect("mkdir");
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            task_cgroups(&bundles, root),
            [root.join("docker/a"), root.join("docker/b")]
        );
        assert!(task_cgroups(&dir.path().join("missing"), root).is_empty());
    }

    #[tokio::test]
    async fn each_leftover_tasks_cgroup_is_killed_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = EngineSpec::system_at(dir.path());
        let cgroups = dir.path().join("cgroup");
        bundle(
            &task_bundles(&spec),
            "docker",
            r#"{"linux": {"cgroupsPath": "/docker/1234"}}"#,
        );
        bundle(
            &task_bundles(&spec),
            "gone",
            r#"{"linux": {"cgroupsPath": "/docker/5678"}}"#,
        );
        // A cgroup as the kernel shows it, already emptied by the kill.
        let live = cgroups.join("docker/1234");
        std::fs::create_dir_all(&live).expect("mkdir");
        std::fs::write(live.join("cgroup.procs"), "").expect("procs");
        std::fs::write(live.join("cgroup.events"), "populated 0\nfrozen 0\n").expect("events");
        let killed = kill_leftover_tasks(&spec, &cgroups).await;
        assert_eq!(
            killed,
            std::slice::from_ref(&live),
            "the task whose cgroup is gone is left"
        );
        assert_eq!(
            std::fs::read_to_string(live.join("cgroup.kill")).expect("written"),
            "1"
        );
    }
}
