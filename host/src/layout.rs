//! Places on a running machine that PID 1 makes and other programs read. PID 1 alone
//! creates them; everyone else takes the names from here.

/// Where PID 1 keeps the root image (the squashfs) mounted read-only, under the overlay
/// that is `/`. The manager finds the system images' seed here.
pub const LOWER: &str = "/run/corral/lower";

/// Where PID 1 mounts the state filesystem.
pub const STATE: &str = "/run/corral/state";

/// The `major:minor` of the filesystem mounted at [`STATE`], from the text of
/// `/proc/self/mountinfo`; `None` when the machine runs from RAM.
pub fn state_device(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.get(4) == Some(&STATE)).then(|| fields.get(2).map(|s| s.to_string()))?
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_device_is_read_from_mountinfo() {
        let mountinfo = "22 1 0:20 / / rw - overlay overlay rw\n\
                         40 22 254:16 / /run/corral/state rw,noatime - ext4 /dev/vdb rw\n\
                         41 22 254:16 /docker /var/lib/docker rw - ext4 /dev/vdb rw\n";
        assert_eq!(state_device(mountinfo).as_deref(), Some("254:16"));
        assert_eq!(
            state_device("22 1 0:20 / / rw - overlay overlay rw\n"),
            None
        );
    }
}
