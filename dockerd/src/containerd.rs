//! The containerd an engine runs on, started before its dockerd rather than by it.
//!
//! dockerd started alone starts its own containerd and gives it 15 s to answer (moby's
//! `startupTimeout`), then exits with code 1. Under emulation, and after a `kill -9`
//! when containerd first cleans up after every shim that lost it, containerd takes
//! longer than that: the engine failed to start, cost a backoff, and three such starts
//! in a row counted its store as broken. So whoever starts an engine starts its
//! containerd first with the configuration dockerd would give it (root, state and
//! socket under dockerd's data and exec roots, the CRI plugin off), waits for it as
//! long as it takes, and points dockerd at it with `--containerd=`: the manager for the
//! system engine ([`crate::engine::Engine::start`]), `corral-engine` for the user
//! engine. This module holds the paths and the configuration both use.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where an engine's containerd keeps things, as dockerd would have it for the same
/// data and exec roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerd {
    /// Persistent state (content, snapshots, metadata), under the data root.
    pub root: PathBuf,
    /// Runtime state (the tasks' bundles), under the exec root.
    pub state: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    /// Its pid, as dockerd writes it for its own containerd, so that one left running
    /// by a dead engine can be found ([`crate::leftover::stop_leftover_containerd`]).
    pub pidfile: PathBuf,
}

impl Containerd {
    /// The containerd of the engine with these data and exec roots.
    pub fn under(data_root: &Path, exec_root: &Path) -> Containerd {
        let dir = exec_root.join("containerd");
        Containerd {
            root: data_root.join("containerd").join("daemon"),
            state: dir.join("daemon"),
            socket: dir.join("containerd.sock"),
            config: dir.join("containerd.toml"),
            pidfile: dir.join("containerd.pid"),
        }
    }

    /// The configuration dockerd writes for its own containerd (format version 2, which
    /// containerd 1.7 reads and 2.x migrates).
    pub fn config_text(&self) -> String {
        let debug = self.socket.with_file_name("containerd-debug.sock");
        format!(
            "# Written at each start of the engine: what dockerd gives its own containerd.\n\
             version = 2\n\
             root = {root:?}\n\
             state = {state:?}\n\
             oom_score = -500\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             \n\
             [grpc]\n  address = {socket:?}\n\
             \n\
             [debug]\n  address = {debug:?}\n",
            root = self.root.display().to_string(),
            state = self.state.display().to_string(),
            socket = self.socket.display().to_string(),
            debug = debug.display().to_string(),
        )
    }

    /// Makes its state directory, writes its configuration (a temporary file renamed over
    /// the last one) and removes a socket a dead containerd left, so that waiting for
    /// the socket waits for this start.
    pub fn prepare(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.state)?;
        let tmp = self.config.with_extension("toml.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(self.config_text().as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.config)?;
        match std::fs::remove_file(&self.socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Whether something accepts connections on its socket.
    pub fn listening(&self) -> bool {
        std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_lives_where_dockerd_would_keep_its_own() {
        let c = Containerd::under(Path::new("/var/lib/docker"), Path::new("/var/run/docker"));
        assert_eq!(c.root, Path::new("/var/lib/docker/containerd/daemon"));
        assert_eq!(c.state, Path::new("/var/run/docker/containerd/daemon"));
        assert_eq!(
            c.socket,
            Path::new("/var/run/docker/containerd/containerd.sock")
        );
        assert_eq!(
            c.pidfile,
            Path::new("/var/run/docker/containerd/containerd.pid")
        );
    }

    #[test]
    fn the_configuration_is_dockerd_s_with_cri_off() {
        let text = Containerd::under(Path::new("/var/lib/docker"), Path::new("/var/run/docker"))
            .config_text();
        for line in [
            "version = 2",
            "root = \"/var/lib/docker/containerd/daemon\"",
            "state = \"/var/run/docker/containerd/daemon\"",
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]",
            "  address = \"/var/run/docker/containerd/containerd.sock\"",
            "  address = \"/var/run/docker/containerd/containerd-debug.sock\"",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }

    #[test]
    fn prepare_writes_the_configuration_and_clears_a_dead_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Containerd::under(&dir.path().join("data"), &dir.path().join("exec"));
        c.prepare().expect("first");
        std::fs::write(&c.socket, "").expect("a dead containerd's socket");
        assert!(!c.listening());
        c.prepare().expect("again");
        assert!(!c.socket.exists(), "the old socket is removed");
        assert_eq!(
            std::fs::read_to_string(&c.config).expect("config"),
            c.config_text()
        );
        assert!(c.state.is_dir());
        let _listener = std::os::unix::net::UnixListener::bind(&c.socket).expect("bind");
        assert!(c.listening());
    }
}
