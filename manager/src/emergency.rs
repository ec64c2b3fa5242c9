//! The last way in: a root shell on the machine's console (`/dev/console`), opened when
//! neither the console service nor the rescue console can run and the kernel command
//! line asks for it (`corral.recovery=shell`). systemd's emergency mode opens one only
//! when root has a password; Corral's root has none, so the operator opts in on the
//! command line, which takes the boot loader (or the hypervisor's console) to change.
//!
//! Owns: that shell process. Talks to: nothing; it is the kernel's console and busybox.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::Stdio;

/// The machine's console, where the kernel writes.
const CONSOLE: &str = "/dev/console";

/// A root shell on the console.
pub struct Shell {
    child: tokio::process::Child,
}

impl Shell {
    /// Says why on the console and opens the shell there.
    pub fn open(why: &str) -> std::io::Result<Shell> {
        let console = OpenOptions::new().read(true).write(true).open(CONSOLE)?;
        let mut banner = console.try_clone()?;
        let _ = writeln!(
            banner,
            "\ncorral: {why}\ncorral: a root shell on this console (corral.recovery=shell); \
             the services keep running, `exit` closes it\n"
        );
        let stream = |f: &File| f.try_clone().map(Stdio::from);
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/")
            .env("TERM", "linux")
            .stdin(stream(&console)?)
            .stdout(stream(&console)?)
            .stderr(stream(&console)?)
            .kill_on_drop(true);
        // SAFETY: between fork and exec only async-signal-safe calls: setsid, and the
        // ioctl that makes the console (stdin, already open) the controlling terminal.
        unsafe {
            command.pre_exec(|| {
                nix::libc::setsid();
                if nix::libc::ioctl(std::io::stdin().as_raw_fd(), nix::libc::TIOCSCTTY, 1) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(Shell {
            child: command.spawn()?,
        })
    }

    /// Whether the shell is still open.
    pub fn is_open(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
