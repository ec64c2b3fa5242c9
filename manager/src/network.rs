//! `corral.network` turned into what the network service does: one line per wired
//! interface (`eth0 dhcp mtu=1500`, `eth1 static 10.0.1.5/24 gw=10.0.1.1`, `eth2 none`)
//! and the DNS settings, handed to the service in its environment. A change of network
//! configuration changes the service's definition, so the manager recreates it.
//!
//! Interfaces match, most specific first: by name (`eth0`), by MAC (`mac=52:54:...`),
//! then by wildcard (`eth*`). A wired interface nothing matches gets DHCP, as RancherOS
//! and Bottlerocket do.

use corral_config::schema::{Interface, Network};
use std::path::Path;

/// A network interface the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub mac: String,
}

/// Wired interfaces under `sys_class_net` (/sys/class/net): on a bus (virtio, ENA,
/// PCI), Ethernet type; not bridges, veths or tunnels.
pub fn wired_links(sys_class_net: &Path) -> Vec<Link> {
    let mut links: Vec<Link> = std::fs::read_dir(sys_class_net)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("device").exists())
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("type")).is_ok_and(|t| t.trim() == "1")
                })
                .map(|e| Link {
                    name: e.file_name().to_string_lossy().into_owned(),
                    mac: std::fs::read_to_string(e.path().join("address"))
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase(),
                })
                .collect()
        })
        .unwrap_or_default();
    links.sort_by(|a, b| a.name.cmp(&b.name));
    links
}

/// `*` matches any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (head.len()..=name.len())
                    .any(|i| name.get(i..).is_some_and(|rest| glob(tail, rest)))
        }
    }
}

/// The settings that apply to `link`, if any entry matches it.
pub fn settings_for<'a>(net: &'a Network, link: &Link) -> Option<&'a Interface> {
    if let Some(i) = net.interfaces.get(&link.name) {
        return Some(i);
    }
    let by_mac = net.interfaces.iter().find(|(k, _)| {
        k.strip_prefix("mac=")
            .is_some_and(|m| m.eq_ignore_ascii_case(&link.mac))
    });
    if let Some((_, i)) = by_mac {
        return Some(i);
    }
    net.interfaces
        .iter()
        .find(|(k, _)| k.contains('*') && glob(k, &link.name))
        .map(|(_, i)| i)
}

/// One line per link for the network service.
pub fn plan(net: &Network, links: &[Link]) -> Vec<String> {
    links
        .iter()
        .map(|link| {
            let Some(i) = settings_for(net, link) else {
                return format!("{} dhcp", link.name);
            };
            let mut addresses: Vec<String> = i.address.iter().map(|a| a.0.clone()).collect();
            addresses.extend(i.addresses.iter().map(|a| a.0.clone()));
            let mut line = link.name.clone();
            let dhcp = i.dhcp.unwrap_or(addresses.is_empty());
            line.push_str(match (dhcp, addresses.is_empty()) {
                (true, _) => " dhcp",
                (false, false) => " static",
                (false, true) => " none",
            });
            if !addresses.is_empty() {
                line.push_str(&format!(" addr={}", addresses.join(",")));
            }
            if let Some(gw) = i.gateway {
                line.push_str(&format!(" gw={gw}"));
            }
            if let Some(gw) = i.gateway_ipv6 {
                line.push_str(&format!(" gw6={gw}"));
            }
            if let Some(mtu) = i.mtu {
                line.push_str(&format!(" mtu={}", mtu.0));
            }
            line
        })
        .collect()
}

/// The network service's environment: `CORRAL_NETWORK` (the plan, `;`-separated),
/// `CORRAL_DNS` and `CORRAL_DNS_SEARCH` (space-separated; when set, they replace what
/// DHCP says).
pub fn environment(net: &Network, links: &[Link]) -> Vec<(String, String)> {
    let mut env = vec![("CORRAL_NETWORK".to_string(), plan(net, links).join(";"))];
    if !net.dns.nameservers.is_empty() {
        let servers: Vec<String> = net.dns.nameservers.iter().map(|s| s.to_string()).collect();
        env.push(("CORRAL_DNS".into(), servers.join(" ")));
    }
    if !net.dns.search.is_empty() {
        let search: Vec<&str> = net.dns.search.iter().map(|s| &**s).collect();
        env.push(("CORRAL_DNS_SEARCH".into(), search.join(" ")));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(yaml: &str) -> Network {
        yaml_serde::from_str(yaml).expect("network")
    }

    fn links() -> Vec<Link> {
        ["eth0", "eth1", "eth2", "ens5"]
            .iter()
            .enumerate()
            .map(|(i, n)| Link {
                name: n.to_string(),
                mac: format!("52:54:00:12:34:5{i}"),
            })
            .collect()
    }

    #[test]
    fn no_configuration_is_dhcp_everywhere() {
        assert_eq!(
            plan(&Network::default(), &links()),
            ["eth0 dhcp", "eth1 dhcp", "eth2 dhcp", "ens5 dhcp"]
        );
        assert_eq!(
            environment(&Network::default(), &links()[..1]),
            [("CORRAL_NETWORK".to_string(), "eth0 dhcp".to_string())]
        );
    }

    #[test]
    fn name_beats_mac_beats_wildcard() {
        let n = net(
            "interfaces:\n  eth0: {dhcp: true, mtu: 9000}\n  MAC=52:54:00:12:34:51: {}\n  \
             mac=52:54:00:12:34:51:\n    address: 10.0.1.5/24\n    addresses: [10.0.1.6/24]\n    gateway: 10.0.1.1\n  \
             'eth*': {dhcp: false}\n  'e*5': {address: 'fd00::5/64', gateway_ipv6: 'fd00::1'}\n\
             dns: {nameservers: [1.1.1.1, 9.9.9.9], search: [corp.example, lab]}\n",
        );
        assert_eq!(
            plan(&n, &links()),
            [
                "eth0 dhcp mtu=9000",
                "eth1 static addr=10.0.1.5/24,10.0.1.6/24 gw=10.0.1.1",
                "eth2 none",
                "ens5 static addr=fd00::5/64 gw6=fd00::1",
            ]
        );
        let env = environment(&n, &links());
        assert_eq!(env[1], ("CORRAL_DNS".into(), "1.1.1.1 9.9.9.9".into()));
        assert_eq!(
            env[2],
            ("CORRAL_DNS_SEARCH".into(), "corp.example lab".into())
        );
    }

    #[test]
    fn globs() {
        assert!(glob("eth*", "eth0") && glob("*", "x") && glob("e*5", "ens5"));
        assert!(!glob("eth*", "ens5") && !glob("e*5", "eth0") && !glob("eth0", "eth01"));
        assert!(glob("*0", "eth0") && glob("e*h*", "eth0"));
    }

    #[test]
    fn wired_links_are_on_a_bus_and_ethernet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mk = |name: &str, device: bool, kind: &str, mac: &str| {
            let d = dir.path().join(name);
            std::fs::create_dir_all(&d).expect("mkdir");
            if device {
                std::fs::create_dir_all(d.join("device")).expect("mkdir");
            }
            std::fs::write(d.join("type"), format!("{kind}\n")).expect("w");
            std::fs::write(d.join("address"), format!("{mac}\n")).expect("w");
        };
        mk("eth0", true, "1", "52:54:00:AA:BB:CC");
        mk("lo", false, "772", "00:00:00:00:00:00");
        mk("docker0", false, "1", "02:42:00:00:00:01");
        mk("wwan0", true, "519", "");
        assert_eq!(
            wired_links(dir.path()),
            [Link {
                name: "eth0".into(),
                mac: "52:54:00:aa:bb:cc".into()
            }]
        );
    }
}
