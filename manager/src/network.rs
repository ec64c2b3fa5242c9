//! `corral.network` turned into what the network service does: the bonds and VLANs to
//! make, then one line per interface (`eth0 dhcp mtu=1500`, `eth1 static 10.0.1.5/24
//! gw=10.0.1.1`, `eth2 none`), and the DNS settings, handed to the service in its
//! environment, with the kernel modules bonds and VLANs need ([`modules`]), which the
//! manager loads. A change of network configuration changes the service's definition,
//! so the manager recreates it.
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

/// The address line of one interface: `name dhcp|static|none [addr=..] [gw=..]
/// [gw6=..] [mtu=..]`. Without settings: DHCP when `dhcp_by_default`, else up with no
/// address.
fn address_line(name: &str, settings: Option<&Interface>, dhcp_by_default: bool) -> String {
    let Some(i) = settings else {
        return format!("{name} {}", if dhcp_by_default { "dhcp" } else { "none" });
    };
    let mut addresses: Vec<String> = i.address.iter().map(|a| a.0.clone()).collect();
    addresses.extend(i.addresses.iter().map(|a| a.0.clone()));
    let mut line = name.to_string();
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
}

/// The settings of a bond or VLAN, which has no MAC address to match by.
fn virtual_settings<'a>(net: &'a Network, name: &str) -> Option<&'a Interface> {
    settings_for(
        net,
        &Link {
            name: name.to_string(),
            mac: String::new(),
        },
    )
}

/// The network service's plan, one line per step, in the order it takes them: the
/// bonds made (`bond0 bond bond.mode=4 bond.miimon=100`), their members joined
/// (`eth1 slave master=bond0`), the VLANs made on wired links and bonds (`bond0.100
/// vlan link=bond0 id=100`), then one address line per interface that carries
/// addresses: the wired links outside a bond (DHCP without settings), the bonds (DHCP
/// without settings, as their members would have had) and the VLANs (up without an
/// address unless configured). A bond no wired link joins is not made.
pub fn plan(net: &Network, links: &[Link]) -> Vec<String> {
    let wired: Vec<(&Link, Option<&Interface>)> =
        links.iter().map(|l| (l, settings_for(net, l))).collect();
    let mut bonds: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (link, settings) in &wired {
        if let Some(bond) = settings.and_then(|i| i.bond.as_ref()) {
            bonds.entry(&bond.0).or_default().push(&link.name);
        }
    }
    let mut lines = Vec::new();
    for bond in bonds.keys() {
        let mut line = format!("{bond} bond");
        if let Some(i) = net.interfaces.get(*bond) {
            for (k, v) in &i.bond_opts {
                line.push_str(&format!(" bond.{k}={v}"));
            }
        }
        lines.push(line);
    }
    for (bond, members) in &bonds {
        lines.extend(members.iter().map(|m| format!("{m} slave master={bond}")));
    }
    // The interfaces that carry addresses, with their settings and default.
    let mut carriers: Vec<(String, Option<&Interface>, bool)> = wired
        .iter()
        .filter(|(_, i)| i.is_none_or(|i| i.bond.is_none()))
        .map(|(l, i)| (l.name.clone(), *i, true))
        .collect();
    carriers.extend(
        bonds
            .keys()
            .map(|b| (b.to_string(), virtual_settings(net, b), true)),
    );
    let mut vlans = Vec::new();
    for (parent, settings, _) in &carriers {
        for vlan in settings.map(|i| i.vlans.as_slice()).unwrap_or_default() {
            let name = vlan.name_on(parent);
            lines.push(format!("{name} vlan link={parent} id={}", vlan.id));
            vlans.push((name.clone(), virtual_settings(net, &name), false));
        }
    }
    carriers.extend(vlans);
    lines.extend(
        carriers
            .iter()
            .map(|(name, settings, dhcp)| address_line(name, *settings, *dhcp)),
    );
    lines
}

/// The kernel modules a plan needs, which the manager loads before the network service
/// starts (the service has no `CAP_SYS_MODULE`): `bonding` for a bond, `8021q` for a
/// VLAN. `max_bonds=0`: loaded with its default, the driver makes a `bond0` of its own,
/// which the service would then find made without the configured options.
pub fn modules(plan: &[String]) -> Vec<String> {
    let mut wanted = Vec::new();
    for (kind, module) in [("bond", "bonding max_bonds=0"), ("vlan", "8021q")] {
        if plan.iter().any(|l| l.split(' ').nth(1) == Some(kind)) {
            wanted.push(module.to_string());
        }
    }
    wanted
}

/// The network service's environment: `CORRAL_NETWORK` ([`plan`]'s lines,
/// `;`-separated), `CORRAL_DNS` and `CORRAL_DNS_SEARCH` (space-separated; when set, they
/// replace what DHCP says).
pub fn environment(net: &Network, plan: &[String]) -> Vec<(String, String)> {
    let mut env = vec![("CORRAL_NETWORK".to_string(), plan.join(";"))];
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
            environment(
                &Network::default(),
                &plan(&Network::default(), &links()[..1])
            ),
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
        let env = environment(&n, &plan(&n, &links()));
        assert_eq!(env[1], ("CORRAL_DNS".into(), "1.1.1.1 9.9.9.9".into()));
        assert_eq!(
            env[2],
            ("CORRAL_DNS_SEARCH".into(), "corp.example lab".into())
        );
    }

    #[test]
    fn bonds_and_vlans_are_made_before_addresses_and_need_their_modules() {
        let n = net(
            "interfaces:\n  eth1: {bond: bond0}\n  eth2: {bond: bond0, address: 10.9.9.9/24}\n  \
             bond0:\n    address: 10.0.3.2/24\n    bond_opts: {mode: active-backup, miimon: '100'}\n    \
             vlans: '100:v100,200'\n  v100: {address: 10.0.4.2/24}\n  \
             eth0: {vlans: [7]}\n  bond9: {bond_opts: {mode: '4'}}\n",
        );
        let plan = plan(&n, &links());
        assert_eq!(
            plan,
            [
                "bond0 bond bond.miimon=100 bond.mode=active-backup",
                "eth1 slave master=bond0",
                "eth2 slave master=bond0",
                "eth0.7 vlan link=eth0 id=7",
                "v100 vlan link=bond0 id=100",
                "bond0.200 vlan link=bond0 id=200",
                "eth0 dhcp",
                "ens5 dhcp",
                "bond0 static addr=10.0.3.2/24",
                "eth0.7 none",
                "v100 static addr=10.0.4.2/24",
                "bond0.200 none",
            ],
            "a member's own addresses are the bond's to carry; bond9 has no member"
        );
        assert_eq!(modules(&plan), ["bonding max_bonds=0", "8021q"]);
        assert_eq!(modules(&["eth0 dhcp".to_string()]), Vec::<String>::new());
        // A bond without an entry of its own gets DHCP, as its members would have.
        let bare = net("interfaces:\n  'eth*': {bond: bond1}\n");
        assert_eq!(
            plan_of(&bare),
            [
                "bond1 bond",
                "eth0 slave master=bond1",
                "eth1 slave master=bond1",
                "eth2 slave master=bond1",
                "ens5 dhcp",
                "bond1 dhcp",
            ]
        );
        assert_eq!(modules(&plan_of(&bare)), ["bonding max_bonds=0"]);
    }

    fn plan_of(n: &Network) -> Vec<String> {
        plan(n, &links())
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
