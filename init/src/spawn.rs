//! Starting programs from PID 1: a clean environment, signals unblocked (PID 1 blocks the
//! ones it reads through signalfd, and a blocked mask survives exec), a session of their
//! own, and optionally a tty as controlling terminal and stdio.

use crate::error::{InitError, Result};
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::Pid;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// PATH for everything PID 1 starts.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

nix::ioctl_write_int_bad!(tiocsctty, nix::libc::TIOCSCTTY);

/// A command with PID 1's clean environment and the signal mask emptied before exec.
fn clean(program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        .env("TERM", "linux");
    // SAFETY: only sigprocmask, async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            Ok(())
        });
    }
    cmd
}

/// Starts `program` with `args`. With `tty`, the program's stdio is that terminal and it
/// becomes the controlling terminal (so a shell there gets job control and Ctrl-C).
pub fn spawn(program: &Path, args: &[&str], tty: Option<&Path>) -> Result<Pid> {
    let err = |source| InitError::Spawn {
        program: program.to_path_buf(),
        source,
    };
    let mut cmd = clean(program, args);
    if let Some(tty) = tty {
        let open = || OpenOptions::new().read(true).write(true).open(tty);
        cmd.stdin(Stdio::from(open().map_err(err)?))
            .stdout(Stdio::from(open().map_err(err)?))
            .stderr(Stdio::from(open().map_err(err)?));
    }
    let with_tty = tty.is_some();
    // SAFETY: between fork and exec only async-signal-safe calls are made: setsid and
    // ioctl (after clean()'s sigprocmask).
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            if with_tty {
                tiocsctty(0, 1)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(err)?;
    // PID 1 reaps through waitpid(-1); the Child handle is not needed.
    Ok(Pid::from_raw(child.id() as i32))
}

/// Runs `program` to its end with the same clean environment and signal mask as
/// [`spawn`] (no session or tty of its own), during boot while PID 1 has no other
/// children (it waits for this one itself). An exit other than 0 is an error with the
/// program's stderr.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    let command = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let out = clean(Path::new(program), args)
        .output()
        .map_err(|e| InitError::Run {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(InitError::Run {
            command,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}
