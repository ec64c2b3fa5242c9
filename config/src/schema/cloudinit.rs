//! cloud-init's basics at the top level that Corral reads besides RancherOS's keys:
//! `ntp` (the time servers) and `ssh_pwauth`.

use super::*;

/// cloud-init's `ntp:`: the servers and pools chrony uses instead of Debian's pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Ntp {
    #[serde(default, deserialize_with = "null_is_default")]
    pub servers: Vec<NtpHost>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub pools: Vec<NtpHost>,
    /// Read for cloud-init's files; the ntp service runs unless `corral service disable
    /// ntp` turned it off.
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl Ntp {
    /// chronyd's directives for these servers (given on its command line, which makes it
    /// ignore its configuration file), or `None` to keep the image's configuration.
    pub fn chrony_directives(&self) -> Option<Vec<String>> {
        if self.servers.is_empty() && self.pools.is_empty() {
            return None;
        }
        let mut d: Vec<String> = [
            "driftfile /var/lib/chrony/chrony.drift",
            "makestep 1 3",
            "rtcsync",
        ]
        .map(String::from)
        .to_vec();
        d.extend(self.servers.iter().map(|s| format!("server {s} iburst")));
        d.extend(self.pools.iter().map(|p| format!("pool {p} iburst")));
        Some(d)
    }
}

checked_string!(
    /// A time server: a host name or an IP address (nothing that could add a directive).
    NtpHost,
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
        if ok {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a host name or an IP address".into(),
            })
        }
    }
);
