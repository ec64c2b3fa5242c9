//! ssh into a guest: a key pair made with OpenSSH's ssh-keygen, the kernel option that
//! authorizes it, and commands run with the real `ssh` client through QEMU's forward on
//! 127.0.0.1.

use crate::{HarnessError, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A key pair on disk.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private: PathBuf,
    /// The public key's line (`ssh-ed25519 AAAA... comment`).
    pub public: String,
}

impl KeyPair {
    /// The ed25519 pair at `private` (and `private.pub`), made if missing.
    pub fn ensure(private: &Path, comment: &str) -> Result<KeyPair> {
        let public_path = private.with_extension("pub");
        if !private.exists() || !public_path.exists() {
            if let Some(dir) = private.parent() {
                std::fs::create_dir_all(dir).map_err(|e| HarnessError::Io(dir.into(), e))?;
            }
            let _ = std::fs::remove_file(private);
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(private)
                .output()
                .map_err(|e| HarnessError::Io("ssh-keygen".into(), e))?;
            if !out.status.success() {
                return Err(HarnessError::Command {
                    command: format!("ssh-keygen -f {}", private.display()),
                    code: out.status.code().unwrap_or(-1),
                    output: String::from_utf8_lossy(&out.stderr).into(),
                });
            }
        }
        let public = std::fs::read_to_string(&public_path)
            .map_err(|e| HarnessError::Io(public_path.clone(), e))?
            .trim()
            .to_string();
        Ok(KeyPair {
            private: private.to_path_buf(),
            public,
        })
    }

    /// The kernel option that authorizes this key, quoted for the kernel's parser.
    pub fn kernel_option(&self) -> String {
        format!("\"corral.ssh_authorized_keys=[{}]\"", self.public)
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; QEMU binds it right after).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| HarnessError::Io("127.0.0.1:0".into(), e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| HarnessError::Io("127.0.0.1:0".into(), e))
}

/// The client side: `user@127.0.0.1 -p port` with a key.
#[derive(Debug, Clone)]
pub struct Ssh {
    pub port: u16,
    pub user: String,
    pub key: PathBuf,
}

impl Ssh {
    /// The `ssh` arguments before the remote command. Host keys are new at every boot of
    /// a machine without a state disk, so they are neither checked nor remembered.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=20",
            "-o",
            "IdentitiesOnly=yes",
        ]
        .map(String::from)
        .to_vec();
        a.extend([
            "-i".into(),
            self.key.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            format!("{}@127.0.0.1", self.user),
        ]);
        a
    }

    /// The command line a person types.
    pub fn command_line(&self) -> String {
        format!("ssh {}", self.args().join(" "))
    }

    /// Runs `command` in the guest; (exit code, stdout and stderr). Killed at `timeout`.
    pub fn run(&self, command: &str, timeout: Duration) -> Result<(i32, String)> {
        self.run_with_input(command, None, timeout)
    }

    /// [`Ssh::run`] with the file `input` (if any) on the command's stdin: `docker load`
    /// of an archive on the host.
    pub fn run_with_input(
        &self,
        command: &str,
        input: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<(i32, String)> {
        let stdin = match input {
            Some(path) => Stdio::from(
                std::fs::File::open(path).map_err(|e| HarnessError::Io(path.to_path_buf(), e))?,
            ),
            None => Stdio::null(),
        };
        let mut child = Command::new("ssh")
            .args(self.args())
            .arg(command)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HarnessError::Io("ssh".into(), e))?;
        // One reader per pipe: read in turn, a full stderr pipe would stall ssh while
        // stdout is being drained.
        fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_string(&mut text);
                }
                text
            })
        }
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HarnessError::Timeout(format!("ssh `{command}`")));
                }
            }
        };
        let mut text = out.join().unwrap_or_default();
        text.push_str(&err.join().unwrap_or_default());
        Ok((status.code().unwrap_or(-1), text))
    }

    /// Runs `command` and fails unless it exits 0; returns its output.
    pub fn check(&self, command: &str, timeout: Duration) -> Result<String> {
        let (code, output) = self.run(command, timeout)?;
        if code != 0 {
            return Err(HarnessError::Command {
                command: command.to_string(),
                code,
                output,
            });
        }
        Ok(output)
    }

    /// Retries `command` (each try killed at `per_try`) until it exits 0 or `timeout`
    /// passes; returns its output.
    pub fn eventually(
        &self,
        command: &str,
        timeout: Duration,
        per_try: Duration,
    ) -> Result<String> {
        crate::retry(command, timeout, || self.run(command, per_try))
    }

    /// Retries `true` until sshd accepts the key; returns when it did.
    pub fn wait_ready(&self, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Ok((0, _)) = self.run("true", left.min(Duration::from_secs(30))) {
                return Ok(Instant::now());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout(format!(
                    "sshd on 127.0.0.1:{} to accept the key",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_pair_is_made_once_and_its_option_is_quoted() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = dir.path().join("id_ed25519");
        let a = KeyPair::ensure(&key, "corral-test").expect("keygen");
        assert!(a.public.starts_with("ssh-ed25519 ") && a.public.ends_with(" corral-test"));
        let b = KeyPair::ensure(&key, "other").expect("again");
        assert_eq!(a.public, b.public, "an existing pair is kept");
        let opt = a.kernel_option();
        assert!(opt.starts_with("\"corral.ssh_authorized_keys=[ssh-ed25519 "));
        assert!(opt.ends_with(" corral-test]\""));
    }

    #[test]
    fn the_client_never_prompts_and_targets_loopback() {
        let ssh = Ssh {
            port: 2222,
            user: "corral".into(),
            key: "/k".into(),
        };
        let line = ssh.command_line();
        assert!(line.contains("BatchMode=yes"));
        assert!(line.ends_with("-i /k -p 2222 corral@127.0.0.1"), "{line}");
        assert!(free_port().expect("port") > 0);
    }
}
