//! # corral-cli
//!
//! The `corral` command: the console container's entrypoint (`corral console-init`,
//! RancherOS's `ros console-init`: the `corral` user's ssh access, the host keys, sshd
//! and the gettys kept running), `corral config validate`, and `corral install` (the ISO
//! onto a disk, [`install`]). The rest of the host CLI (`corral config set`, `corral
//! service`, ...) lands with its issue. See README.md for what this crate owns.

pub mod console;
pub mod files;
pub mod install;
pub mod passwd;
pub mod usercmd;
pub mod validate;
