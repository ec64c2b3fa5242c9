//! The part of the cloud-config schema Corral reads so far. Unknown keys are accepted and
//! ignored, as RancherOS and cloud-init do, so a RancherOS cloud-config loads unchanged.

use serde::{Deserialize, Deserializer};

/// A machine's configuration (cloud-config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CloudConfig {
    /// Public keys allowed to log in as `corral` over ssh.
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    /// The host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Corral's own section; `rancher:` is read as an alias.
    #[serde(default, alias = "rancher")]
    pub corral: Corral,
}

/// The `corral:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Corral {
    /// More authorized keys: what `corral.ssh_authorized_keys=[...]` on the kernel
    /// command line sets.
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    /// Consoles that log `corral` in without a prompt.
    #[serde(default)]
    pub autologin: Autologin,
}

/// Which consoles log in by themselves: `corral.autologin` (all of them) or
/// `corral.autologin=ttyS0` / `[tty1, ttyS0]` (RancherOS's `rancher.autologin=ttyS0`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Autologin {
    #[default]
    Off,
    All,
    Ttys(Vec<String>),
}

impl Autologin {
    /// Whether the console on `tty` logs in by itself.
    pub fn covers(&self, tty: &str) -> bool {
        match self {
            Autologin::Off => false,
            Autologin::All => true,
            Autologin::Ttys(ttys) => ttys.iter().any(|t| t == tty),
        }
    }
}

impl<'de> Deserialize<'de> for Autologin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            One(String),
            Many(Vec<String>),
        }
        let raw = Option::<Raw>::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected true, false, a tty name or a list of them")
        })?;
        Ok(match raw {
            None | Some(Raw::Flag(false)) => Autologin::Off,
            Some(Raw::Flag(true)) => Autologin::All,
            Some(Raw::One(s)) => Autologin::Ttys(
                s.split(',')
                    .map(|t| t.trim().trim_start_matches("/dev/").to_string())
                    .filter(|t| !t.is_empty())
                    .collect(),
            ),
            Some(Raw::Many(v)) => Autologin::Ttys(
                v.into_iter()
                    .map(|t| t.trim_start_matches("/dev/").to_string())
                    .collect(),
            ),
        })
    }
}

impl CloudConfig {
    /// Every authorized key, from both places, each once, in order.
    pub fn authorized_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for k in self
            .ssh_authorized_keys
            .iter()
            .chain(&self.corral.ssh_authorized_keys)
        {
            let k = k.trim();
            if !k.is_empty() && !keys.iter().any(|have| have == k) {
                keys.push(k.to_string());
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> CloudConfig {
        yaml_serde::from_str(yaml).expect("parses")
    }

    #[test]
    fn a_rancheros_cloud_config_loads_with_its_unknown_keys() {
        let c = parse(
            "#cloud-config\nhostname: node1\nssh_authorized_keys:\n  - ssh-rsa AAAA one\n\
             rancher:\n  autologin: ttyS0\n  network:\n    interfaces:\n      eth0: {dhcp: true}\n\
             write_files: []\n",
        );
        assert_eq!(c.hostname.as_deref(), Some("node1"));
        assert_eq!(c.authorized_keys(), ["ssh-rsa AAAA one"]);
        assert_eq!(c.corral.autologin, Autologin::Ttys(vec!["ttyS0".into()]));
    }

    #[test]
    fn keys_from_both_places_are_merged_once() {
        let c =
            parse("ssh_authorized_keys: [a, b]\ncorral:\n  ssh_authorized_keys: [b, ' c ', '']\n");
        assert_eq!(c.authorized_keys(), ["a", "b", "c"]);
    }

    #[test]
    fn autologin_forms() {
        let a = |y: &str| {
            parse(&format!("corral: {{autologin: {y}}}"))
                .corral
                .autologin
        };
        assert_eq!(a("true"), Autologin::All);
        assert_eq!(a("false"), Autologin::Off);
        assert_eq!(a("null"), Autologin::Off);
        assert_eq!(
            a("'tty1,/dev/ttyS0'"),
            Autologin::Ttys(vec!["tty1".into(), "ttyS0".into()])
        );
        assert_eq!(a("[ttyS0]"), Autologin::Ttys(vec!["ttyS0".into()]));
        assert!(a("[ttyS0]").covers("ttyS0") && !a("[ttyS0]").covers("tty1"));
        assert!(Autologin::All.covers("tty1") && !Autologin::Off.covers("tty1"));
        let bad: Result<CloudConfig, _> = yaml_serde::from_str("corral: {autologin: {a: 1}}");
        assert!(bad.is_err());
    }
}
