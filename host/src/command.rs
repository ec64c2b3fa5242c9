//! Running programs, the one way the project does it: [`output`] runs any prepared
//! command to its end and turns a failure into one error that names the command line and
//! carries its status and the tail of its stderr (the build, the ISO tools, the console's
//! ssh-keygen and the test harness all go through it). For PID 1 and the processes it
//! supervises, [`spawn`] and [`run`] add a clean environment, signals unblocked (PID 1
//! blocks the ones it reads through signalfd, and a blocked mask survives exec), a
//! session of their own, and optionally a tty as controlling terminal and stdio.

use crate::error::{HostError, Result};
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
    let err = |source| HostError::Spawn {
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
    output(&mut clean(Path::new(program), args)).map(drop)
}

/// [`run`], returning what the program printed on stdout; a program still running after
/// `limit` is killed and is an error. Its output must fit a pipe's buffer (64 KiB): it is
/// read once the program has exited.
pub fn run_output(program: &str, args: &[&str], limit: std::time::Duration) -> Result<String> {
    use std::io::Read;
    let mut cmd = clean(Path::new(program), args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let command = shown(&cmd);
    let failed = |detail: String| HostError::Command {
        command: command.clone(),
        detail,
    };
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => HostError::ProgramMissing {
            program: program.to_string(),
        },
        _ => failed(e.to_string()),
    })?;
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "still running after {}s; stopped",
                    limit.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    let text = |stream: Option<&mut dyn Read>| {
        let mut s = String::new();
        if let Some(r) = stream {
            let _ = r.read_to_string(&mut s);
        }
        s
    };
    let stdout = text(child.stdout.as_mut().map(|s| s as &mut dyn Read));
    if !status.success() {
        let stderr = text(child.stderr.as_mut().map(|s| s as &mut dyn Read));
        let lines: Vec<&str> = stderr.trim().lines().collect();
        let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
        return Err(failed(format!("{status}: {tail}")));
    }
    Ok(stdout)
}

/// How many of a failed command's last stderr lines its error carries: enough for the
/// reason (mkfs, xorriso and mmdebstrap print it last), few enough for a console.
const STDERR_LINES: usize = 12;

/// The command line as a user would type it (program and arguments, no environment).
pub fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a prepared command to its end and returns its stdout. A program that is not
/// installed is [`HostError::ProgramMissing`]; one that cannot start or exits other than
/// 0 is [`HostError::Command`] with the command line, the exit status and the last lines
/// of its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let command = shown(cmd);
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => HostError::ProgramMissing {
            program: cmd.get_program().to_string_lossy().into_owned(),
        },
        _ => HostError::Command {
            command: command.clone(),
            detail: e.to_string(),
        },
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.trim().lines().collect();
        let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
        return Err(HostError::Command {
            command,
            detail: if tail.is_empty() {
                out.status.to_string()
            } else {
                format!("{}: {tail}", out.status)
            },
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a user's command (bootcmd, runcmd, a user-data script) to its end, or kills it
/// once `limit` has passed, and returns the report line for the log: `{what}: exit N`
/// (or how it ended) and then its stdout and stderr, indented. Never an error: a command
/// that cannot start is reported the same way, and the next command still runs.
/// Blocking; the manager calls it off its runtime threads.
pub fn report(what: &str, cmd: &mut Command, limit: Option<std::time::Duration>) -> String {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return format!("{what}: could not start: {e}"),
    };
    // Read both pipes while waiting, so a chatty command cannot fill one and stall.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = limit.map(|l| (std::time::Instant::now() + l, l));
    let ended = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status_words(status),
            Ok(None) => {}
            Err(e) => break format!("waiting for it failed: {e}"),
        }
        if let Some((at, limit)) = deadline {
            if std::time::Instant::now() >= at {
                let _ = child.kill();
                let _ = child.wait();
                break format!("still running after {limit:?}; killed");
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut text = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(&stderr.join().unwrap_or_default()));
    let body: String = text
        .trim_end()
        .lines()
        .map(|l| format!("\n    {l}"))
        .collect();
    format!("{what}: {ended}{body}")
}

fn status_words(status: std::process::ExitStatus) -> String {
    status
        .code()
        .map(|c| format!("exit {c}"))
        .unwrap_or_else(|| "killed by a signal".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_output_returns_stdout_and_stops_a_program_that_overruns() {
        let _children = crate::CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
        let limit = std::time::Duration::from_secs(10);
        assert_eq!(
            run_output("/bin/sh", &["-c", "echo from; echo sh"], limit).expect("runs"),
            "from\nsh\n"
        );
        let err = run_output("/bin/sh", &["-c", "echo why >&2; exit 4"], limit).expect_err("fails");
        assert!(err.to_string().contains("why"), "{err}");
        let started = std::time::Instant::now();
        let err = run_output("/bin/sleep", &["30"], std::time::Duration::from_millis(300))
            .expect_err("stopped");
        assert!(err.to_string().contains("still running after 0s"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(
            run_output("/nonexistent/prog", &[], limit),
            Err(HostError::ProgramMissing { .. })
        ));
    }

    #[test]
    fn a_failing_command_is_named_with_its_status_and_last_stderr_lines() {
        let _children = crate::CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
        let err = output(Command::new("sh").args([
            "-c",
            "for i in $(seq 1 20); do echo line$i >&2; done; exit 3",
        ]))
        .expect_err("fails");
        let msg = err.to_string();
        assert!(msg.starts_with("`sh -c for i in"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.contains("line20") && msg.contains("line9"), "{msg}");
        assert!(!msg.contains("line8\n"), "only the last lines: {msg}");
    }

    #[test]
    fn a_missing_program_is_its_own_error() {
        let _children = crate::CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
        let err = output(&mut Command::new("no-such-program-anywhere")).expect_err("missing");
        assert!(
            matches!(&err, HostError::ProgramMissing { program } if program == "no-such-program-anywhere"),
            "{err}"
        );
    }

    #[test]
    fn stdout_comes_back_and_the_clean_runner_empties_the_environment() {
        let _children = crate::CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
        let out = output(Command::new("sh").args(["-c", "echo hi"])).expect("runs");
        assert_eq!(out, "hi\n");
        let env = output(&mut clean(Path::new("/usr/bin/env"), &[])).expect("env");
        let mut names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
        names.sort();
        assert_eq!(names, ["HOME", "PATH", "TERM"]);
    }

    #[test]
    fn a_report_has_the_exit_and_both_outputs_and_a_limit_kills() {
        let _children = crate::CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
        let line = report(
            "bootcmd[0] `x`",
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 2"]),
            None,
        );
        assert_eq!(line, "bootcmd[0] `x`: exit 2\n    out\n    err");
        let started = std::time::Instant::now();
        let line = report(
            "slow",
            Command::new("sleep").arg("30"),
            Some(std::time::Duration::from_millis(200)),
        );
        assert_eq!(line, "slow: still running after 200ms; killed");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let line = report("gone", &mut Command::new("/nonexistent/prog"), None);
        assert!(line.starts_with("gone: could not start: "), "{line}");
        let big = report(
            "big",
            Command::new("sh").args(["-c", "head -c 300000 /dev/zero | tr '\\0' a; echo"]),
            None,
        );
        assert!(big.starts_with("big: exit 0\n    aaaa") && big.len() > 300_000);
    }
}
