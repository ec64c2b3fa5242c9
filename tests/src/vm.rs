//! A running machine: QEMU started with its serial ports on sockets, the console read with
//! deadlines, commands run through the debug shell on ttyS1, and on failure the whole
//! console log kept and its path printed.

use crate::channel::Channel;
use crate::qemu::{Serial, VmConfig};
use crate::{HarnessError, Result};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A machine under test.
pub struct Vm {
    pub name: String,
    pub dir: PathBuf,
    child: Child,
    pub console: Channel,
    pub shell: Channel,
    pub started: Instant,
    counter: u32,
    shell_ready: bool,
}

fn connect(path: &Path, child: &mut Child, deadline: Instant) -> Result<UnixStream> {
    loop {
        if let Ok(s) = UnixStream::connect(path) {
            return Ok(s);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(HarnessError::QemuExited(status.to_string()));
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout(format!(
                "QEMU's socket {}",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Vm {
    /// Starts QEMU. `dir` receives the sockets, console.log, shell.log and qemu.log.
    /// `answers` are (prompt, reply) pairs typed on the console when the prompt shows.
    pub fn start(
        name: &str,
        cfg: &VmConfig,
        dir: &Path,
        answers: Vec<(String, String)>,
    ) -> Result<Vm> {
        std::fs::create_dir_all(dir).map_err(|e| HarnessError::Io(dir.to_path_buf(), e))?;
        let console_sock = dir.join("console.sock");
        let shell_sock = dir.join("shell.sock");
        for s in [&console_sock, &shell_sock] {
            let _ = std::fs::remove_file(s);
        }
        let monitor = dir.join("monitor.sock");
        let _ = std::fs::remove_file(&monitor);
        let serial = Serial::Sockets {
            console: console_sock.clone(),
            shell: shell_sock.clone(),
            monitor: monitor.clone(),
        };
        let qemu_log = dir.join("qemu.log");
        let log =
            std::fs::File::create(&qemu_log).map_err(|e| HarnessError::Io(qemu_log.clone(), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| HarnessError::Io(qemu_log.clone(), e))?;
        let started = Instant::now();
        let mut child = Command::new("qemu-system-x86_64")
            .args(cfg.args(&serial))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| HarnessError::Io("qemu-system-x86_64".into(), e))?;
        let deadline = started + Duration::from_secs(30);
        let con = connect(&console_sock, &mut child, deadline)?;
        let sh = connect(&shell_sock, &mut child, deadline)?;
        let console = Channel::start(con, Some(&dir.join("console.log")), started, answers)
            .map_err(|e| HarnessError::Io(console_sock, e))?;
        let shell = Channel::start(sh, Some(&dir.join("shell.log")), started, Vec::new())
            .map_err(|e| HarnessError::Io(shell_sock, e))?;
        Ok(Vm {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            child,
            console,
            shell,
            started,
            counter: 0,
            shell_ready: false,
        })
    }

    /// Sends one command to QEMU's monitor (`system_powerdown` presses the ACPI power
    /// button) and returns what the monitor printed.
    pub fn monitor(&self, command: &str) -> Result<String> {
        use std::io::{Read, Write};
        let path = self.dir.join("monitor.sock");
        let io = |e| HarnessError::Io(path.clone(), e);
        let mut s = UnixStream::connect(&path).map_err(io)?;
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(io)?;
        s.write_all(format!("{command}\n").as_bytes()).map_err(io)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // The monitor never closes; read until it has been quiet for a moment.
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Waits for `needle` on the console; returns the seconds since QEMU started.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Result<f64> {
        self.console
            .wait(0, timeout, |text| text.contains(needle).then_some(()))
            .map(|()| self.started.elapsed().as_secs_f64())
            .ok_or_else(|| self.timeout(&format!("{needle:?} on the console")))
    }

    fn timeout(&self, what: &str) -> HarnessError {
        HarnessError::Timeout(format!(
            "{what} (console log: {})",
            self.dir.join("console.log").display()
        ))
    }

    /// Runs a shell command in the guest through the debug shell; returns (exit code,
    /// output). The machine must boot with `corral.debug_shell=ttyS1`.
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<(i32, String)> {
        if !self.shell_ready {
            // No echo, no prompt: only the command's own output comes back.
            self.shell
                .send("stty -echo 2>/dev/null; PS1=''; PS2=''\n")
                .map_err(|e| HarnessError::Io(self.dir.join("shell.sock"), e))?;
            self.shell_ready = true;
        }
        self.counter += 1;
        let n = self.counter;
        let from = self.shell.mark();
        let line = format!("echo @@B{n}; ( {command} ) 2>&1; echo @@E{n}:$?\n");
        self.shell
            .send(&line)
            .map_err(|e| HarnessError::Io(self.dir.join("shell.sock"), e))?;
        let begin = format!("@@B{n}\n");
        let end = format!("@@E{n}:");
        self.shell
            .wait(from, timeout, |text| {
                let b = text.find(&begin)? + begin.len();
                let e = b + text[b..].find(&end)?;
                let rest = &text[e + end.len()..];
                let code_len = rest.find('\n')?;
                let code = rest[..code_len].trim().parse().ok()?;
                Some((code, text[b..e].to_string()))
            })
            .ok_or_else(|| self.timeout(&format!("the command {command:?} to finish")))
    }

    /// Runs a command and fails unless it exits 0; returns its output.
    pub fn check(&mut self, command: &str, timeout: Duration) -> Result<String> {
        let (code, out) = self.run(command, timeout)?;
        if code != 0 {
            return Err(HarnessError::Command {
                command: command.to_string(),
                code,
                output: out,
            });
        }
        Ok(out)
    }

    /// [`Vm::run`] until `command` exits 0 or `timeout` passes; returns its output.
    pub fn eventually(
        &mut self,
        command: &str,
        timeout: Duration,
        per_try: Duration,
    ) -> Result<String> {
        crate::retry(command, timeout, || self.run(command, per_try))
    }

    /// Waits for QEMU to exit (after a poweroff in the guest).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(self.timeout("QEMU to exit"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Console lines with their times, for benchmarks and reports.
    pub fn console_lines(&self) -> Vec<(f64, String)> {
        self.console.lines()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = self.console.text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!(
                "--- {}: last console lines (whole log: {}) ---\n{}",
                self.name,
                self.dir.join("console.log").display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}
