//! # corral-cli
//!
//! The `corral` command. Today it is the console container's entrypoint
//! (`corral console-init`, RancherOS's `ros console-init`): it prepares the `corral`
//! user's ssh access and the host keys, then runs sshd and the gettys and keeps them
//! running. The host CLI proper (`corral config`, `corral service`, ...) lands with its
//! issue. See README.md for what this crate owns.

pub mod console;
pub mod files;
pub mod install;
pub mod passwd;
pub mod usercmd;
pub mod validate;
