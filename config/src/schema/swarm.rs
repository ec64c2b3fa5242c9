//! `corral.swarm`: the Docker Swarm the user engine starts or joins (docs/swarm.md).
//! Addresses and the token are checked as they are read; that `init` and `join` are not
//! both set is checked once the section is read. A join token is a secret: it never
//! shows in `Debug` output or in an error. `labels` become the user engine's labels;
//! `availability` is sent with the init or join Corral makes.

use super::*;

/// How many addresses `remote_addrs` and `default_addr_pool` may list.
pub const MAX_SWARM_ADDRS: usize = 16;

/// `corral.swarm`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SwarmFields")]
pub struct Swarm {
    /// What the node does: nothing (the default), start a swarm, or join one.
    pub role: SwarmRole,
    /// The node's labels, as the user engine's labels (`engine.labels.KEY` in placement
    /// constraints).
    pub labels: BTreeMap<SwarmLabel, SwarmLabelValue>,
    /// Whether the swarm gives this node tasks; sent with the init or join Corral makes
    /// (a worker too), never changed later.
    pub availability: Option<Availability>,
}

/// How many labels `corral.swarm.labels` may hold.
pub const MAX_SWARM_LABELS: usize = 64;

/// A node's availability, as `docker node update --availability` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    Active,
    Pause,
    Drain,
}

impl Availability {
    /// The word Docker uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Active => "active",
            Availability::Pause => "pause",
            Availability::Drain => "drain",
        }
    }
}

checked_string!(
    /// A label's key: letters, digits, `.`, `-`, `_` and `/`, starting with a letter or
    /// digit, up to 128 (`zone`, `com.example.disk`).
    SwarmLabel,
    |s| {
        let ok = (1..=128).contains(&s.len())
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
        if ok {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a label key; use letters, digits, `.`, `-`, `_` and `/`, \
                          like zone or com.example.disk"
                    .into(),
            })
        }
    }
);

checked_string!(
    /// A label's value: up to 256 characters, no control characters.
    SwarmLabelValue,
    |s| {
        if s.chars().count() <= 256 && !s.chars().any(char::is_control) {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.chars().take(40).collect(),
                problem: "is not a label value; at most 256 characters on one line".into(),
            })
        }
    }
);

/// Whether the node starts a swarm, joins one, or is left as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SwarmRole {
    /// No `init` and no `join`: the node's swarm membership is the user's business.
    #[default]
    Unset,
    /// `init: true`: this node starts a swarm and is its first manager.
    Init(SwarmInit),
    /// `join`: this node joins a swarm, as a worker or a manager (the token says which).
    Join(SwarmJoin),
}

/// `corral.swarm` with `init: true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmInit {
    pub advertise_addr: Option<SwarmAddr>,
    pub listen_addr: Option<SwarmAddr>,
    pub data_path_addr: Option<SwarmAddr>,
    /// The pools overlay networks' subnets are taken from (`10.20.0.0/16`).
    pub default_addr_pool: Vec<Cidr>,
}

/// `corral.swarm.join`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SwarmJoin {
    /// Managers to reach (`10.0.0.1:2377`; the port is 2377 when left out).
    #[serde(deserialize_with = "swarm_peers")]
    pub remote_addrs: Vec<SwarmPeer>,
    pub token: SwarmToken,
    #[serde(default)]
    pub advertise_addr: Option<SwarmAddr>,
    #[serde(default)]
    pub listen_addr: Option<SwarmAddr>,
    #[serde(default)]
    pub data_path_addr: Option<SwarmAddr>,
}

/// The section as written, before `init` and `join` are told apart.
#[derive(Deserialize)]
struct SwarmFields {
    #[serde(default)]
    init: Option<bool>,
    #[serde(default)]
    advertise_addr: Option<SwarmAddr>,
    #[serde(default)]
    listen_addr: Option<SwarmAddr>,
    #[serde(default)]
    data_path_addr: Option<SwarmAddr>,
    #[serde(default, deserialize_with = "swarm_pools")]
    default_addr_pool: Vec<Cidr>,
    #[serde(default)]
    join: Option<SwarmJoin>,
    #[serde(default, deserialize_with = "swarm_labels")]
    labels: BTreeMap<SwarmLabel, SwarmLabelValue>,
    #[serde(default)]
    availability: Option<Availability>,
}

fn swarm_labels<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<SwarmLabel, SwarmLabelValue>, D::Error> {
    let map = Option::<BTreeMap<SwarmLabel, SwarmLabelValue>>::deserialize(d)?.unwrap_or_default();
    if map.len() > MAX_SWARM_LABELS {
        return Err(serde::de::Error::custom(format!(
            "labels holds {} entries; at most {MAX_SWARM_LABELS} are taken",
            map.len()
        )));
    }
    Ok(map)
}

impl TryFrom<SwarmFields> for Swarm {
    type Error = String;

    fn try_from(f: SwarmFields) -> Result<Swarm, String> {
        let init = f.init.unwrap_or(false);
        let init_keys = [
            ("advertise_addr", f.advertise_addr.is_some()),
            ("listen_addr", f.listen_addr.is_some()),
            ("data_path_addr", f.data_path_addr.is_some()),
            ("default_addr_pool", !f.default_addr_pool.is_empty()),
        ];
        let data_paths = [
            ("swarm.data_path_addr", f.data_path_addr.as_ref()),
            (
                "swarm.join.data_path_addr",
                f.join.as_ref().and_then(|j| j.data_path_addr.as_ref()),
            ),
        ];
        for (key, addr) in data_paths {
            if let Some(addr) = addr.filter(|a| a.port().is_some()) {
                return Err(format!(
                    "{key} {:?} has a port; the data path takes an address or an interface \
                     alone (its port is Swarm's 4789), like eth1",
                    addr.0
                ));
            }
        }
        let role = match (init, f.join) {
            (true, Some(_)) => {
                return Err(
                    "swarm.init and swarm.join are both set; a node either starts a swarm \
                     (init: true) or joins one (join:), so keep one of them"
                        .into(),
                )
            }
            (true, None) => SwarmRole::Init(SwarmInit {
                advertise_addr: f.advertise_addr,
                listen_addr: f.listen_addr,
                data_path_addr: f.data_path_addr,
                default_addr_pool: f.default_addr_pool,
            }),
            (false, join) => {
                if let Some((key, _)) = init_keys.iter().find(|(_, set)| *set) {
                    return Err(format!(
                        "swarm.{key} is set but swarm.init is not; it belongs to the node that \
                         starts the swarm (init: true), or under join: for a node that joins one"
                    ));
                }
                join.map_or(SwarmRole::Unset, SwarmRole::Join)
            }
        };
        Ok(Swarm {
            role,
            labels: f.labels,
            availability: f.availability,
        })
    }
}

fn bounded_list<'de, D, T>(d: D, key: &str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let list = Option::<Vec<T>>::deserialize(d)?.unwrap_or_default();
    if list.len() > MAX_SWARM_ADDRS {
        return Err(serde::de::Error::custom(format!(
            "{key} lists {} entries; at most {MAX_SWARM_ADDRS} are taken",
            list.len()
        )));
    }
    Ok(list)
}

fn swarm_pools<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    bounded_list(d, "default_addr_pool")
}

fn swarm_peers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SwarmPeer>, D::Error> {
    let list: Vec<SwarmPeer> = bounded_list(d, "remote_addrs")?;
    if list.is_empty() {
        return Err(serde::de::Error::custom(
            "remote_addrs is empty; name at least one manager, like [10.0.0.1:2377]",
        ));
    }
    Ok(list)
}

/// A port after a `:`, 1 to 65535.
fn check_port(port: &str) -> bool {
    port.parse::<u16>().is_ok_and(|p| p > 0) && !port.starts_with('+')
}

/// `HOST` or `HOST:PORT` split (`[fd00::1]:2377` -> `fd00::1`, `2377`; a bare IPv6
/// address has no port).
pub fn split_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((ip, port)) = rest.split_once("]:") {
            return (ip, Some(port));
        }
        return (rest.strip_suffix(']').unwrap_or(rest), None);
    }
    match s.rsplit_once(':') {
        // One colon: HOST:PORT; more: a bare IPv6 address.
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (s, None),
    }
}

/// Brackets are for an IPv6 address only (`[fd00::1]`, never `[10.0.0.1]` or `[eth1]`).
fn brackets_hold_ipv6(s: &str, host: &str) -> bool {
    !s.starts_with('[') || host.parse::<std::net::Ipv6Addr>().is_ok()
}

fn is_dns_name(s: &str) -> bool {
    (1..=253).contains(&s.len())
        && s.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl SwarmAddr {
    /// The port, when one is given.
    pub fn port(&self) -> Option<&str> {
        split_port(&self.0).1
    }
}

checked_string!(
    /// Where this node listens or is reached, as `docker swarm init` takes it: an IP
    /// address or an interface's name (`eth1`), with a port or without
    /// (`10.0.0.1:2377`, `eth1:2377`, `[fd00::1]:2377`).
    SwarmAddr,
    |s| {
        let (host, port) = split_port(s);
        // A name of digits and dots is a mistyped address, not an interface.
        let host_ok = host.parse::<IpAddr>().is_ok()
            || (check_ifname(host).is_ok()
                && !host.chars().all(|c| c.is_ascii_digit() || c == '.'));
        let host_ok = host_ok && brackets_hold_ipv6(s, host);
        if host_ok && port.is_none_or(check_port) {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not an address or an interface name with an optional port; \
                          write it like 10.0.0.1, eth1 or 10.0.0.1:2377"
                    .into(),
            })
        }
    }
);

checked_string!(
    /// A manager to join through: an IP address or a host name, with a port or without
    /// (2377).
    SwarmPeer,
    |s| {
        let (host, port) = split_port(s);
        // A name of digits and dots is a mistyped address, not a host name.
        let host_ok = host.parse::<IpAddr>().is_ok()
            || (is_dns_name(host) && !host.chars().all(|c| c.is_ascii_digit() || c == '.'));
        let host_ok = host_ok && brackets_hold_ipv6(s, host);
        if host_ok && port.is_none_or(check_port) {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a manager's address; write it like 10.0.0.1:2377 or \
                          manager1.example.com"
                    .into(),
            })
        }
    }
);

/// A swarm join token (`SWMTKN-1-<50 base-36 digits>-<25 base-36 digits>`, or
/// `SWMTKN-2-<0|1>-...` from a FIPS cluster). A secret: `Debug` shows only its kind,
/// and a malformed one is never echoed.
#[derive(Clone, PartialEq, Eq)]
pub struct SwarmToken(String);

impl SwarmToken {
    /// The token itself, for the engine's join request and `corral swarm token`.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Whether `s` has a join token's shape.
    pub fn well_formed(s: &str) -> bool {
        let base36 = |p: &str, len: usize| {
            p.len() == len
                && p.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        };
        let parts: Vec<&str> = s.split('-').collect();
        match parts.as_slice() {
            ["SWMTKN", "1", digest, secret] => base36(digest, 50) && base36(secret, 25),
            ["SWMTKN", "2", "0" | "1", digest, secret] => base36(digest, 50) && base36(secret, 25),
            _ => false,
        }
    }
}

impl std::fmt::Debug for SwarmToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SwarmToken(<hidden>)")
    }
}

impl<'de> Deserialize<'de> for SwarmToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Checked by the scalar's visitor, so the error carries the key's own path.
        let s = d.deserialize_any(ScalarVisitor(|s| {
            if SwarmToken::well_formed(s.trim()) {
                Ok(())
            } else {
                Err(crate::ConfigError::Secret(
                    "is not a swarm join token (SWMTKN-1- and two groups of lowercase letters \
                     and digits); copy it whole from `corral swarm token` or `docker swarm \
                     join-token -q worker` on a manager"
                        .into(),
                ))
            }
        }))?;
        Ok(SwarmToken(s.trim().to_string()))
    }
}
