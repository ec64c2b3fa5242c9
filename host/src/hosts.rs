//! The hosts file's line for the machine's own name. PID 1 writes it at boot and the
//! manager again when the configuration names the host; both go through [`with_name`].

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

#[cfg(test)]
mod tests {
    use super::*;

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
