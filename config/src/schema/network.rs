//! `corral.network`: interfaces, addresses, MTU, bonds, VLANs, DNS, proxies.

use super::*;

/// `corral.network`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Network {
    /// By name (`eth0`), wildcard (`eth*`) or MAC address (`mac=52:54:00:12:34:56`).
    /// An entry that cannot be read is kept with its [`Interface::problem`]: that
    /// interface is left unconfigured and the rest of the network comes up.
    #[serde(default, deserialize_with = "interfaces")]
    pub interfaces: BTreeMap<String, Interface>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub dns: Dns,
    /// The proxy for http and https, given to both engines and the console (RancherOS's
    /// keys).
    #[serde(default)]
    pub http_proxy: Option<ProxyUrl>,
    #[serde(default)]
    pub https_proxy: Option<ProxyUrl>,
    /// Hosts, domains and networks reached without the proxy (`localhost,.corp`).
    #[serde(default)]
    pub no_proxy: Option<Scalar>,
    /// Commands run by the network service before it configures any interface, and
    /// after it has configured them all (RancherOS's keys).
    #[serde(default, deserialize_with = "commands")]
    pub pre_cmds: Vec<Command>,
    #[serde(default, deserialize_with = "commands")]
    pub post_cmds: Vec<Command>,
}

impl Network {
    /// The proxy settings as the environment programs read them: each variable in
    /// upper and lower case (Go reads either, curl and apt the lower).
    pub fn proxy_environment(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        let settings = [
            ("HTTP_PROXY", self.http_proxy.as_deref()),
            ("HTTPS_PROXY", self.https_proxy.as_deref()),
            ("NO_PROXY", self.no_proxy.as_ref().map(|s| s.0.as_str())),
        ];
        for (name, value) in settings {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                env.push((name.to_string(), v.to_string()));
                env.push((name.to_lowercase(), v.to_string()));
            }
        }
        env
    }
}

/// One interface's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Interface {
    /// DHCP on it (the default when no address is given).
    #[serde(default)]
    pub dhcp: Option<bool>,
    #[serde(default)]
    pub address: Option<Cidr>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub addresses: Vec<Cidr>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub gateway_ipv6: Option<IpAddr>,
    #[serde(default)]
    pub mtu: Option<Mtu>,
    /// Joins the bond of this name (RancherOS's `bond: bond0`); the bond's own entry
    /// holds its addresses and `bond_opts`.
    #[serde(default)]
    pub bond: Option<IfName>,
    /// For a bond's own entry: its options, by the names the kernel's bonding driver
    /// gives them in sysfs, as RancherOS writes them (`mode: "4"`, `miimon: "100"`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub bond_opts: BTreeMap<BondOption, BondValue>,
    /// VLANs on this interface: RancherOS's `"100,200:name"` or a list (`[100,
    /// "200:name"]`); one without a name is `<interface>.<id>`.
    #[serde(default, deserialize_with = "vlans")]
    pub vlans: Vec<Vlan>,
    /// RancherOS's `bridge:`: `true` makes this entry's name a bridge; a name makes this
    /// interface a port of that bridge (made if need be).
    #[serde(default, deserialize_with = "bridge")]
    pub bridge: Option<Bridge>,
    /// Commands run by the network service before this interface is configured, and
    /// after (for DHCP: once its first lease is bound); `$iface` is its name.
    #[serde(default, deserialize_with = "commands")]
    pub pre_up: Vec<Command>,
    #[serde(default, deserialize_with = "commands")]
    pub post_up: Vec<Command>,
    /// Why this entry could not be read, when it could not: the interface it matches is
    /// left unconfigured (RancherOS's netconf logged the error and went on).
    #[serde(skip)]
    pub problem: Option<String>,
}

/// What `bridge:` makes of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bridge {
    /// `bridge: true`: the entry's own name is a bridge.
    Own,
    /// `bridge: br0`: this interface is a port of `br0`.
    Port(IfName),
}

/// `bridge:` as RancherOS read it: `true`/`"true"`, a bridge's name, or `false`/empty.
fn bridge<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bridge>, D::Error> {
    use serde::de::Error;
    let bad = |v: &str| {
        D::Error::custom(format!(
            "bridge {v:?} is neither true nor a bridge's name; write `bridge: true` on the bridge's own entry, or `bridge: br0` on a port"
        ))
    };
    match yaml_serde::Value::deserialize(d)? {
        yaml_serde::Value::Null | yaml_serde::Value::Bool(false) => Ok(None),
        yaml_serde::Value::Bool(true) => Ok(Some(Bridge::Own)),
        yaml_serde::Value::String(s) => match s.trim() {
            "" | "false" => Ok(None),
            "true" => Ok(Some(Bridge::Own)),
            name => check_ifname(name)
                .map(|()| Some(Bridge::Port(IfName(name.to_string()))))
                .map_err(|_| bad(name)),
        },
        other => Err(bad(&format!("{other:?}"))),
    }
}

/// `interfaces:`, each entry read on its own: one that does not read is kept with its
/// problem (and no settings), so that it alone is left unconfigured.
fn interfaces<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Interface>, D::Error> {
    let raw = Option::<BTreeMap<String, yaml_serde::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .map(|(name, value)| {
            let read = match value {
                yaml_serde::Value::Null => Ok(Interface::default()),
                v => Interface::deserialize(v),
            };
            let mut entry = read.unwrap_or_else(|e| Interface {
                problem: Some(e.to_string()),
                ..Interface::default()
            });
            if entry.problem.is_none() && entry.bridge == Some(Bridge::Own) {
                if let Err(e) = check_ifname(&name) {
                    entry = Interface {
                        problem: Some(format!("bridge: {e}")),
                        ..Interface::default()
                    };
                }
            }
            (name, entry)
        })
        .collect())
}

impl Network {
    /// The entries that could not be read, with why: each a warning, its interface left
    /// unconfigured.
    pub fn problems(&self) -> impl Iterator<Item = (&str, &str)> {
        self.interfaces
            .iter()
            .filter_map(|(k, i)| i.problem.as_deref().map(|p| (k.as_str(), p)))
    }
}

checked_string!(
    /// A network interface's name as the kernel takes it: 1 to 15 letters, digits, `_`,
    /// `.` and `-` (not `.` or `..`).
    IfName,
    check_ifname
);

pub(crate) fn check_ifname(s: &str) -> Result<(), crate::ConfigError> {
    let ok = (1..=15).contains(&s.len())
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(crate::ConfigError::Invalid {
            value: s.to_string(),
            problem: "is not an interface name; use 1 to 15 letters, digits, `_`, `.` and `-`, like bond0".into(),
        })
    }
}

/// The bonding driver's options that `ip link add ... type bond` sets (the same names as
/// its sysfs files under `/sys/class/net/<bond>/bonding/`).
pub const BOND_OPTIONS: &[&str] = &[
    "mode",
    "miimon",
    "updelay",
    "downdelay",
    "use_carrier",
    "arp_interval",
    "arp_validate",
    "arp_all_targets",
    "arp_ip_target",
    "primary",
    "primary_reselect",
    "fail_over_mac",
    "xmit_hash_policy",
    "resend_igmp",
    "num_grat_arp",
    "num_unsol_na",
    "all_slaves_active",
    "min_links",
    "lp_interval",
    "packets_per_slave",
    "tlb_dynamic_lb",
    "lacp_rate",
    "ad_select",
    "ad_user_port_key",
    "ad_actor_sys_prio",
    "ad_actor_system",
];

checked_string!(
    /// One of [`BOND_OPTIONS`].
    BondOption,
    |s| {
        if BOND_OPTIONS.contains(&s) {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: format!("is not a bond option Corral sets; use one of {}", BOND_OPTIONS.join(", ")),
            })
        }
    }
);

checked_string!(
    /// A bond option's value: a word or number (`802.3ad`, `4`, `100`), or addresses
    /// separated by commas (`arp_ip_target`).
    BondValue,
    |s| {
        let ok = (1..=128).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "._:,+-".contains(c));
        if ok {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a bond option's value; use a word or number like 802.3ad or 100, or addresses separated by commas".into(),
            })
        }
    }
);

/// A VLAN on an interface: its 802.1Q id (1 to 4094) and, when given, its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vlan {
    pub id: u16,
    pub name: Option<IfName>,
}

impl Vlan {
    /// Its interface's name on `parent`: its own, or `<parent>.<id>` as RancherOS names it.
    pub fn name_on(&self, parent: &str) -> String {
        match &self.name {
            Some(n) => n.0.clone(),
            None => format!("{parent}.{}", self.id),
        }
    }
}

/// One VLAN entry: `100` or `100:name`.
fn parse_vlan(item: &str) -> Result<Vlan, crate::ConfigError> {
    let (id, name) = match item.split_once(':') {
        Some((id, name)) => (id.trim(), Some(name.trim())),
        None => (item.trim(), None),
    };
    let id = match id.parse::<u16>() {
        Ok(n) if (1..=4094).contains(&n) => n,
        _ => return Err(crate::ConfigError::Invalid {
            value: item.to_string(),
            problem:
                "is not a VLAN; write its id (1 to 4094) and, if you like, a name: 100 or 100:name"
                    .into(),
        }),
    };
    let name = match name {
        Some(n) => {
            check_ifname(n)?;
            Some(IfName(n.to_string()))
        }
        None => None,
    };
    Ok(Vlan { id, name })
}

/// `vlans:` as a string of comma-separated entries, one entry, or a list of them.
fn vlans<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vlan>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<Vlan>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("VLANs: \"100,200:name\" or a list like [100, \"200:name\"]")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| parse_vlan(p).map_err(E::custom))
                .collect()
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<Scalar>()? {
                out.push(parse_vlan(&item.0).map_err(serde::de::Error::custom)?);
            }
            Ok(out)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V)
}

/// An MTU, 68 (IPv4's minimum) to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mtu(pub u32);

impl<'de> Deserialize<'de> for Mtu {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Mtu;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an mtu, a number like 1500")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Mtu, E> {
                match u32::try_from(n) {
                    Ok(n) if (68..=65535).contains(&n) => Ok(Mtu(n)),
                    _ => Err(E::custom(format!(
                        "mtu {n} is out of range; use 68 to 65535 (1500 on most networks)"
                    ))),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Mtu, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_u32(V)
    }
}

/// `corral.network.dns`: replaces what DHCP says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Dns {
    #[serde(default, deserialize_with = "null_is_default")]
    pub nameservers: Vec<IpAddr>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub search: Vec<Hostname>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(yaml: &str) -> Result<Interface, String> {
        yaml_serde::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn bonds_and_vlans_read_as_rancheros_writes_them() {
        let bond =
            iface("bond_opts: {mode: \"4\", miimon: 100, lacp_rate: fast}\nvlans: 100,200:foobar")
                .expect("bond");
        assert_eq!(bond.bond_opts.len(), 3);
        assert_eq!(
            bond.bond_opts.get(&BondOption("miimon".into())),
            Some(&BondValue("100".into()))
        );
        assert_eq!(
            bond.vlans,
            [
                Vlan {
                    id: 100,
                    name: None
                },
                Vlan {
                    id: 200,
                    name: Some(IfName("foobar".into()))
                }
            ]
        );
        assert_eq!(bond.vlans[0].name_on("bond0"), "bond0.100");
        assert_eq!(bond.vlans[1].name_on("bond0"), "foobar");
        let member = iface("bond: bond0\nvlans: [7, \"8:v8\"]").expect("member");
        assert_eq!(member.bond, Some(IfName("bond0".into())));
        assert_eq!(member.vlans.len(), 2);
        assert_eq!(iface("vlans: 42").expect("one").vlans[0].id, 42);
        assert_eq!(iface("vlans:").expect("none").vlans, []);
    }

    #[test]
    fn bad_bonds_and_vlans_say_what_to_write() {
        for (yaml, says) in [
            ("bond: 'bond 0'", "is not an interface name"),
            ("bond: averyveryverylongname", "is not an interface name"),
            ("bond_opts: {mode_x: 1}", "is not a bond option Corral sets"),
            ("bond_opts: {mode: 'a b'}", "is not a bond option's value"),
            ("bond_opts: {mode: 'x;y'}", "is not a bond option's value"),
            ("vlans: 0", "is not a VLAN"),
            ("vlans: 4095", "is not a VLAN"),
            ("vlans: '100,x'", "is not a VLAN"),
            ("vlans: '100:a=b'", "is not an interface name"),
        ] {
            let err = iface(yaml).expect_err(yaml);
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }
}

checked_string!(
    /// A proxy as the environment names it: a URL, or `host:port` (Go and curl take
    /// it as http); one word, nothing that could end the line it is written on.
    ProxyUrl,
    |s| {
        if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\'') {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a proxy address; write http://host:port".into(),
            })
        }
    }
);
