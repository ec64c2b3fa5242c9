//! `corral-engine`: the entrypoint of the `engine` image. Prepares the container for a
//! Docker engine inside it, then runs containerd and `dockerd` with the arguments it was
//! given (the manager puts them in the service's command), staying as the container's
//! main process (`corral_user_docker::engine_init` says why and how).
//!
//! Under cgroup v2 the container's own cgroup is the root of its cgroup namespace, and a
//! cgroup with processes in it cannot hand controllers to child cgroups ("no internal
//! processes"). So the processes move to a leaf, `init`, and every controller is
//! enabled for the children, where dockerd puts its containers.

use std::path::Path;

const CGROUP: &str = "/sys/fs/cgroup";

fn main() {
    if let Err(e) = nest_cgroup(Path::new(CGROUP)) {
        eprintln!("corral-engine: preparing {CGROUP} for the engine's containers: {e}");
        std::process::exit(1);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(corral_user_docker::engine_init::run(&args));
}

/// Moves the processes of the cgroup at `root` into `root/init` and enables its
/// controllers for child cgroups. Nothing to do on cgroup v1.
fn nest_cgroup(root: &Path) -> std::io::Result<()> {
    let controllers = match std::fs::read_to_string(root.join("cgroup.controllers")) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let init = root.join("init");
    std::fs::create_dir_all(&init)?;
    // Move whatever is in the root, one process per write as the kernel wants; a process
    // that exited in between is no error.
    let procs = std::fs::read_to_string(root.join("cgroup.procs"))?;
    for pid in procs.split_whitespace() {
        if let Err(e) = std::fs::write(init.join("cgroup.procs"), pid) {
            if e.raw_os_error() != Some(nix_esrch()) {
                return Err(e);
            }
        }
    }
    let enable: Vec<String> = controllers
        .split_whitespace()
        .map(|c| format!("+{c}"))
        .collect();
    if !enable.is_empty() {
        std::fs::write(root.join("cgroup.subtree_control"), enable.join(" "))?;
    }
    Ok(())
}

/// ESRCH: "no such process".
fn nix_esrch() -> i32 {
    3
}
