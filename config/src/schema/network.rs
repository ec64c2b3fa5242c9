//! `corral.network`: interfaces, addresses, MTU, DNS.

use super::*;

/// `corral.network`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Network {
    /// By name (`eth0`), wildcard (`eth*`) or MAC address (`mac=52:54:00:12:34:56`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub interfaces: BTreeMap<String, Interface>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub dns: Dns,
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
