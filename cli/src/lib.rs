//! # corral-cli
//!
//! The `corral` command: the console container's entrypoint (`corral console-init`,
//! RancherOS's `ros console-init`: the `corral` user's ssh access, the host keys, sshd
//! and the gettys kept running), `corral config validate`, and `corral install` (the ISO
//! onto a disk, [`install`]), and the commands the manager answers over its socket
//! ([`api`]: `os version`, `service ...`, `boot-report`). See README.md for what this
//! crate owns.

pub mod api;
pub mod config;
pub mod console;
pub mod files;
pub mod install;
pub mod passwd;
pub mod usercmd;
pub mod validate;
