//! Runtime state that an earlier run of the engine left behind, cleared by
//! `corral-engine` before containerd starts.
//!
//! crun and runc keep a container's state in a folder under dockerd's exec root
//! (`runtime-runc/moby/<id>`: dockerd names the folder after the runc shim whatever
//! binary it runs, so crun's state is there too). The folder goes when its task is
//! deleted. When dockerd is killed while it deletes a task (the engine's container
//! SIGKILLed at the end of its stop time, a crash), the folder can outlive the task, and
//! the container's next start fails with "container `<id>` already exists" until the
//! machine reboots. By the time `corral-engine` starts, every process of the earlier run
//! is gone (the engine's container shares the host's PID namespace, so its shim kills
//! its whole cgroup when its first process exits), so such a folder names a dead
//! container. It is cleared with the runtime's own `delete`, without `--force`: the
//! runtime removes what it made (state, cgroup) and refuses a container that still runs.
//!
//! Owns nothing but that call; reads only the exec root's runtime folders.

use std::path::{Path, PathBuf};

/// The file a crun state folder holds, and the one a runc state folder holds.
const CRUN_STATE: &str = "status";
const RUNC_STATE: &str = "state.json";
/// More entries than this in one runtime folder are left alone (a folder that is not
/// what it seems).
const MAX_ENTRIES: usize = 10_000;

/// Runs a runtime's `delete`; a fake in the tests.
pub trait Runtime {
    /// `binary --root root delete id`; Err with what it said when it failed.
    fn delete(&mut self, binary: &str, root: &Path, id: &str) -> Result<(), String>;
}

/// The runtimes on this machine, run as child processes.
pub struct Installed;

impl Runtime for Installed {
    fn delete(&mut self, binary: &str, root: &Path, id: &str) -> Result<(), String> {
        let out = std::process::Command::new(binary)
            .arg("--root")
            .arg(root)
            .arg("delete")
            .arg(id)
            .output()
            .map_err(|e| format!("running {binary}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

/// The runtime state folders under `exec_root`: `runtime-*/moby`, sorted.
pub fn state_roots(exec_root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(exec_root) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("runtime-"))
        .map(|e| e.path().join("moby"))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// Which runtime made the state folder `dir`: crun or runc, by the file it keeps.
fn made_by(dir: &Path) -> Option<&'static str> {
    if dir.join(CRUN_STATE).is_file() {
        Some("crun")
    } else if dir.join(RUNC_STATE).is_file() {
        Some("runc")
    } else {
        None
    }
}

/// Deletes, with the runtime that made it, every container state folder under
/// `exec_root`'s runtime folders. Returns the ids deleted and, for the others, why not.
pub fn clear(exec_root: &Path, runtime: &mut dyn Runtime) -> (Vec<String>, Vec<String>) {
    let mut cleared = Vec::new();
    let mut left = Vec::new();
    for root in state_roots(exec_root) {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .take(MAX_ENTRIES + 1)
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // crun's own `.cache` and `.empty-directory`.
            .filter(|name| !name.starts_with('.'))
            .collect();
        if ids.len() > MAX_ENTRIES {
            left.push(format!(
                "{}: more than {MAX_ENTRIES} entries; left alone",
                root.display()
            ));
            continue;
        }
        ids.sort();
        for id in ids {
            let Some(binary) = made_by(&root.join(&id)) else {
                left.push(format!(
                    "{}: not crun's or runc's state; left alone",
                    root.join(&id).display()
                ));
                continue;
            };
            match runtime.delete(binary, &root, &id) {
                Ok(()) => cleared.push(id),
                Err(why) => left.push(format!("{binary} delete {id}: {why}")),
            }
        }
    }
    (cleared, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each call; fails for the ids in `refuse`, and removes the folder of the
    /// others as the runtime would.
    struct Fake {
        calls: Vec<(String, PathBuf, String)>,
        refuse: Vec<&'static str>,
    }

    impl Runtime for Fake {
        fn delete(&mut self, binary: &str, root: &Path, id: &str) -> Result<(), String> {
            self.calls
                .push((binary.to_string(), root.to_path_buf(), id.to_string()));
            if self.refuse.contains(&id) {
                return Err("cannot delete a running container".into());
            }
            std::fs::remove_dir_all(root.join(id)).map_err(|e| e.to_string())
        }
    }

    fn state(root: &Path, id: &str, file: &str) {
        std::fs::create_dir_all(root.join(id)).expect("mkdir");
        std::fs::write(root.join(id).join(file), "{}").expect("state");
    }

    #[test]
    fn each_containers_state_is_deleted_by_the_runtime_that_made_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exec = dir.path();
        let runc = exec.join("runtime-runc/moby");
        let other = exec.join("runtime-kata/moby");
        state(&runc, "aaa", CRUN_STATE);
        state(&runc, "bbb", RUNC_STATE);
        state(&runc, "live", CRUN_STATE);
        state(&other, "ccc", "kata-state");
        std::fs::create_dir_all(runc.join(".cache")).expect("cache");
        std::fs::create_dir_all(runc.join(".empty-directory")).expect("empty");
        std::fs::write(runc.join("a-file"), "").expect("file");
        // Not a runtime's folder at all.
        std::fs::create_dir_all(exec.join("containerd/daemon")).expect("containerd");
        let mut fake = Fake {
            calls: Vec::new(),
            refuse: vec!["live"],
        };
        let (cleared, left) = clear(exec, &mut fake);
        assert_eq!(cleared, ["aaa", "bbb"]);
        assert_eq!(
            fake.calls,
            [
                ("crun".to_string(), runc.clone(), "aaa".to_string()),
                ("runc".to_string(), runc.clone(), "bbb".to_string()),
                ("crun".to_string(), runc.clone(), "live".to_string()),
            ]
        );
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(
            left[0].contains("ccc") && left[0].contains("left alone"),
            "{left:?}"
        );
        assert!(
            left[1].contains("crun delete live: cannot delete"),
            "{left:?}"
        );
        assert!(!runc.join("aaa").exists() && runc.join("live").exists());
        assert!(runc.join(".cache").exists());
    }

    #[test]
    fn an_exec_root_without_runtime_state_asks_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut fake = Fake {
            calls: Vec::new(),
            refuse: Vec::new(),
        };
        assert_eq!(clear(dir.path(), &mut fake), (vec![], vec![]));
        assert_eq!(
            clear(&dir.path().join("missing"), &mut fake),
            (vec![], vec![])
        );
        assert!(fake.calls.is_empty());
    }
}
