//! # corral-cli
//!
//! The `corral` command.
//!
//! - `corral config validate [-i FILE]`: every problem in a cloud-config file (or, without
//!   `-i`, in the machine's saved layers, the last rejected user-data and the kernel
//!   command line), with file, line, column, key and a hint; exits 1 on errors
//!   (`src/validate.rs`). Works on a laptop before boot.
//! - `corral install -d DEVICE [-c CLOUD_CONFIG] [-f] [--no-reboot]`: installs Corral
//!   from the ISO this machine booted onto a whole disk, in the disk image's layout, with
//!   the cloud-config as the machine's own; refuses (before writing) the ISO's disk, a
//!   partition, a disk in use, a small disk, a bad cloud-config and a "no"
//!   (`src/install/`: `plan.rs` decides, `write.rs` writes, `host.rs` is the machine
//!   behind a trait, faked in the tests). docs/disks.md.
//! - `corral config get|set|merge|export`: the configuration in force read by key, and
//!   changes to the saved `config set` layer through corral-config's `edit`, each checked
//!   with `validate`'s checks and refused whole when it would not validate
//!   (`src/config.rs`).
//! - `corral os upgrade|list|status|rollback`: a signed release (corral-update, against
//!   the root metadata in the host's root) verified whole, then written into the boot
//!   slot that is not running and armed as a trial in GRUB's environment block on the
//!   ESP (corral-disk's `bootenv` decides); the slots' state and the last rollback; the
//!   other good slot made the next boot (`src/upgrade/`: `machine.rs` finds the boot
//!   disk and the slot that runs, `slot.rs` writes a slot). docs/upgrades.md.
//! - `corral os version`, `corral service list|ps|start|stop|restart|logs [-f]|enable|disable|up`,
//!   `corral engine list|switch`, `corral console list|switch|enable` (`--from FILE|URL`
//!   first copies the console's image archive into `/var/lib/corral/consoles/` with a
//!   progress bar: `src/commands/consoles.rs`), `corral tls generate`, `corral boot-report` (each listing `--format table|json`): one request each to the
//!   manager over `/run/corral/api.sock` through `corral-api`'s client, the answer printed
//!   as a table or JSON; `enable FILE|URL` reads the services file and sends its text
//!   (`src/api.rs`). `corral poweroff|reboot` signal PID 1; `corral completion SHELL`
//!   prints a completion script. docs/cli.md.
//! - `corral console-init`, the console container's entrypoint: writes
//!   `/home/corral/.ssh/authorized_keys` from the configuration in force, writes
//!   `write_files` (`src/files.rs`; neither it nor the keys are written through a link
//!   another account planted, `src/nofollow.rs`), installs `corral.ssh.keys` or makes missing ssh host
//!   keys in `/var/lib/corral/ssh`, runs sshd (port, listen address, or none, per
//!   `corral.ssh`) and a getty per console, restarting any that exits (PID 1's `Respawn`
//!   loop), and starts `corral runcmd`. `write_files` and runcmd run at the first console
//!   start of a boot only (a marker in `/run/corral`), not again when the console's
//!   container or the system engine restarts. At each start it also makes cloud-init's
//!   `users` (`src/users.rs`), writes the registry credentials (`src/registries.rs`),
//!   the proxies' profile and the time zone (`src/timezone.rs`).
//! - `corral runcmd`: `runcmd`, then a `#!` user-data script, every boot; output to the
//!   log and `/var/log/runcmd.log` (`src/usercmd.rs`).
//!
//! Arguments are parsed by clap (`--help` everywhere; `src/args.rs`, whose unit tests walk
//! every command for its help and parse each form); each command family is a module of
//! `src/commands/` and `src/main.rs` only parses and dispatches. Exit codes are 0 done,
//! 1 the user's error, 2 the machine's. See docs/cli.md, docs/cloud-config.md and docs/services.md.
//!
//! - **Owns:** the console's set-up at each start: `authorized_keys` of `corral`, the host
//!   keys in `/var/lib/corral/ssh`, `/run/sshd`, the files `write_files` names,
//!   `/var/log/runcmd.log`.
//!   `corral install` owns the disk it is told to erase, and nothing else: it refuses
//!   disks in use and the one holding the ISO. `corral os upgrade` owns the boot slot
//!   that is not running, the download cache and trusted metadata in
//!   `/var/lib/corral/upgrade/`, and (with `os rollback`) the boot state on the ESP while
//!   it runs; never the running slot.
//! - **Must not touch:** engine sockets directly (the host CLI goes through the manager's
//!   `/run/corral/api.sock`), other users' files, the host's mounts (install mounts the ISO
//!   and the new filesystems in the console's own namespace, under a scratch directory,
//!   and unmounts them before it ends).
//! - **Talks to:** an update repository (http, https) or file, through corral-update;
//!   the manager (`/run/corral/api.sock`, `corral-api`), PID 1 (a signal for
//!   poweroff and reboot), the `config` crate (library), OpenSSH's `ssh-keygen` and `sshd`, busybox
//!   `getty`, the kernel log; for install, corral-disk (the disk's plan: table, GRUB's sectors, the boot
//!   kit's names, each filesystem's files; `src/install/write.rs` carries it out on the
//!   device), sysfs and /proc, `mkfs.ext4`, `mkfs.vfat`, mount(2).

pub mod api;
pub mod args;
pub mod commands;
pub mod config;
pub mod console;
pub mod files;
pub mod install;
pub mod nofollow;
pub mod passwd;
pub mod registries;
pub mod ros;
pub mod timezone;
pub mod upgrade;
pub mod usercmd;
pub mod users;
pub mod validate;
