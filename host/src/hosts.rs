//! The machine's name: set with sethostname(2), written to `/etc/hostname`, and put on
//! `127.0.1.1` in `/etc/hosts`. PID 1 applies the boot name (`corral.hostname` or the
//! default) and the manager the configured one once the configuration is read; both
//! call [`apply`], so the name is set one way.

use crate::sys::Sys;
use crate::HostError;
use std::path::Path;

/// /etc/hosts with the host name on 127.0.1.1 (Debian's convention), so that programs
/// that look their own name up (sudo, for one) find it. Containers on the host network
/// get a copy of this file.
pub fn with_name(hosts: &str, hostname: &str) -> String {
    let mut out: String = hosts
        .lines()
        .filter(|l| !l.starts_with("127.0.1.1"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("127.0.1.1 {hostname}\n"));
    out
}

/// Sets the host name and writes it to `/etc/hostname` and `/etc/hosts`; returns what
/// failed (each failure leaves the rest done).
pub fn apply(sys: &dyn Sys, name: &str) -> Vec<HostError> {
    let mut errors = Vec::new();
    if let Err(e) = sys.set_hostname(name) {
        errors.push(e);
    }
    if let Err(e) = sys.write(Path::new("/etc/hostname"), &format!("{name}\n")) {
        errors.push(e);
    }
    let path = Path::new("/etc/hosts");
    let hosts = sys.read_to_string(path).unwrap_or_default();
    if let Err(e) = sys.write(path, &with_name(&hosts, name)) {
        errors.push(e);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::{Call, FakeSys};

    #[test]
    fn apply_sets_the_name_and_writes_both_files() {
        let sys = FakeSys::default().with_file("/etc/hosts", "127.0.0.1 localhost\n");
        assert!(apply(&sys, "n1").is_empty());
        assert!(sys.calls().contains(&Call::SetHostname("n1".into())));
        assert_eq!(
            sys.read_to_string(Path::new("/etc/hostname"))
                .expect("written"),
            "n1\n"
        );
        assert_eq!(
            sys.read_to_string(Path::new("/etc/hosts"))
                .expect("written"),
            "127.0.0.1 localhost\n127.0.1.1 n1\n"
        );
    }

    #[test]
    fn the_name_replaces_any_earlier_127_0_1_1_line() {
        let hosts = "127.0.0.1 localhost\n127.0.1.1 old\n::1 localhost\n";
        assert_eq!(
            with_name(hosts, "node7"),
            "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 node7\n"
        );
        assert_eq!(with_name("", "a"), "127.0.1.1 a\n");
    }
}
