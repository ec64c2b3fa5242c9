//! Places on a running machine that PID 1 makes and other programs read. PID 1 alone
//! creates them; everyone else takes the names from here.

/// Where PID 1 keeps the root image (the squashfs) mounted read-only, under the overlay
/// that is `/`. The manager finds the system images' seed here.
pub const LOWER: &str = "/run/corral/lower";

/// Where PID 1 mounts the state filesystem.
pub const STATE: &str = "/run/corral/state";

/// (directory on the state filesystem, where it appears): the engines' data, Corral's
/// own (saved configuration, ssh host keys, TLS, preload), users' homes, /opt, logs.
/// PID 1 binds them at boot; `corral install` puts the configuration where they land.
pub const PERSISTED: &[(&str, &str)] = &[
    ("system-docker", "/var/lib/system-docker"),
    ("docker", "/var/lib/docker"),
    ("corral", "/var/lib/corral"),
    ("home", "/home"),
    ("opt", "/opt"),
    ("log", "/var/log"),
];
