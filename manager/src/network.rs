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

use base64::Engine as _;
use corral_config::schema::{Bridge, Command, Interface, Network};
use std::collections::{BTreeMap, BTreeSet};
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

/// A configured command as a line of shell (an argument list quoted word by word), in
/// base64 so that it fits in one word of a plan line: `pre=...`, `post=...`.
fn command_token(key: &str, command: &Command) -> String {
    let line = match command {
        Command::Shell(line) => line.clone(),
        Command::Argv(args) => args
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" "),
    };
    format!(
        "{key}={}",
        base64::engine::general_purpose::STANDARD.encode(line)
    )
}

/// ` pre=.. post=..`: an interface's `pre_up` and `post_up` commands.
fn command_tokens(settings: Option<&Interface>) -> String {
    let mut out = String::new();
    if let Some(i) = settings {
        for c in &i.pre_up {
            out.push(' ');
            out.push_str(&command_token("pre", c));
        }
        for c in &i.post_up {
            out.push(' ');
            out.push_str(&command_token("post", c));
        }
    }
    out
}

/// The address line of one interface: `name dhcp|static|none [addr=..] [gw=..]
/// [gw6=..] [mtu=..] [pre=..] [post=..]`. Without settings: DHCP when
/// `dhcp_by_default`, else up with no address.
fn address_line(name: &str, settings: Option<&Interface>, dhcp_by_default: bool) -> String {
    let Some(i) = settings else {
        return format!("{name} {}", if dhcp_by_default { "dhcp" } else { "none" });
    };
    let mut addresses: Vec<String> = i.address.iter().map(|a| a.0.clone()).collect();
    addresses.extend(i.addresses.iter().map(|a| a.0.clone()));
    let mut line = name.to_string();
    let dhcp = i.dhcp.unwrap_or(addresses.is_empty() && dhcp_by_default);
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
    line.push_str(&command_tokens(Some(i)));
    line
}

/// The settings of a bond, bridge or VLAN, which has no MAC address to match by.
fn virtual_settings<'a>(net: &'a Network, name: &str) -> Option<&'a Interface> {
    settings_for(
        net,
        &Link {
            name: name.to_string(),
            mac: String::new(),
        },
    )
}

/// An entry's key that names one interface (not a wildcard or a MAC address).
fn is_plain_name(key: &str) -> bool {
    !key.contains('*') && !key.to_ascii_lowercase().starts_with("mac=")
}

/// What the network service is to do, and what of the configuration it cannot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// One line per step, in order (see [`plan`]).
    pub steps: Vec<String>,
    /// Interfaces left unconfigured or settings not used, each naming the interface
    /// and why; the manager logs them as errors.
    pub problems: Vec<String>,
}

/// The network service's plan, one line per step, in the order it takes them: the
/// bridges made (`br0 bridge`), the bonds (`bond0 bond bond.mode=4 bond.miimon=100`),
/// their members joined (`eth1 slave master=bond0`), the VLANs made on wired links,
/// bonds and bridges (`bond0.100 vlan link=bond0 id=100`), the bridges' ports joined
/// (`eth3 port master=br0`), then one address line per interface that carries
/// addresses: the wired links outside a bond or bridge (DHCP without settings), the
/// bonds (DHCP without settings, as their members would have had), the bridges and
/// VLANs (up without an address unless configured).
///
/// A bond no present interface joins is not made; a bridge is made when an entry says
/// `bridge: true` or a present interface is its port. An entry that could not be read
/// leaves what it names unconfigured (a wired link it matches gets no line, a bond or
/// bridge it names is not made, their members are left alone); each such case, and an
/// entry naming an interface the machine does not have, is in [`Plan::problems`].
pub fn plan(net: &Network, links: &[Link]) -> Plan {
    let mut problems: Vec<String> = net
        .problems()
        .map(|(name, why)| {
            format!("network.interfaces.{name}: {why}; the interface it names is left unconfigured")
        })
        .collect();
    let broken = |name: &str| virtual_settings(net, name).is_some_and(|i| i.problem.is_some());
    // Wired links whose entry does not read are left alone.
    let wired: Vec<(&Link, Option<&Interface>)> = links
        .iter()
        .map(|l| (l, settings_for(net, l)))
        .filter(|(_, i)| i.is_none_or(|i| i.problem.is_none()))
        .collect();
    // Bridges: named by `bridge: true` (plain names only) or by a port.
    let mut bridges: BTreeSet<String> = net
        .interfaces
        .iter()
        .filter(|(k, i)| i.bridge == Some(Bridge::Own) && is_plain_name(k))
        .map(|(k, _)| k.clone())
        .collect();
    // Each bond's members, with the settings they matched.
    let mut bonds: BTreeMap<String, Vec<(&Link, Option<&Interface>)>> = Default::default();
    for (link, settings) in &wired {
        if let Some(bond) = settings.and_then(|i| i.bond.as_ref()) {
            if broken(&bond.0) {
                problems.push(format!(
                    "network.interfaces.{}: its bond {} is not made (its entry does not read); {} is left unconfigured",
                    link.name, bond.0, link.name
                ));
            } else {
                bonds
                    .entry(bond.0.clone())
                    .or_default()
                    .push((link, *settings));
            }
        }
    }
    // Entries naming members that are not here.
    let present = |name: &str| links.iter().any(|l| l.name == name);
    for (key, i) in &net.interfaces {
        if !is_plain_name(key) || present(key) || i.problem.is_some() {
            continue;
        }
        if let Some(bond) = &i.bond {
            problems.push(format!(
                "network.interfaces.{key}: this machine has no interface {key}; bond {} {}",
                bond.0,
                if bonds.contains_key(&bond.0) {
                    "is made without it"
                } else {
                    "is not made: none of its interfaces is here"
                }
            ));
        }
    }
    let mut lines = Vec::new();
    // The interfaces that carry addresses, with their settings and default; ports are
    // taken out once the bridges' members are known.
    let mut carriers: Vec<(String, Option<&Interface>, bool)> = wired
        .iter()
        .filter(|(_, i)| i.is_none_or(|i| i.bond.is_none()))
        .map(|(l, i)| (l.name.clone(), *i, true))
        .collect();
    carriers.extend(
        bonds
            .keys()
            .map(|b| (b.clone(), virtual_settings(net, b), true)),
    );
    let mut vlans = Vec::new();
    for (parent, settings, _) in &carriers {
        for vlan in settings.map(|i| i.vlans.as_slice()).unwrap_or_default() {
            let name = vlan.name_on(parent);
            lines.push(format!("{name} vlan link={parent} id={}", vlan.id));
            vlans.push((name.clone(), virtual_settings(net, &name), false));
        }
    }
    let vlan_names: BTreeSet<String> = vlans.iter().map(|(n, _, _)| n.clone()).collect();
    carriers.extend(vlans);
    // Ports: any carrier whose entry names a bridge.
    let mut ports = Vec::new();
    carriers.retain(|(name, settings, _)| match settings.and_then(|i| i.bridge.as_ref()) {
        Some(Bridge::Port(bridge)) if broken(&bridge.0) => {
            problems.push(format!(
                "network.interfaces.{name}: its bridge {} is not made (its entry does not read); {name} is left unconfigured",
                bridge.0
            ));
            false
        }
        Some(Bridge::Port(bridge)) => {
            bridges.insert(bridge.0.clone());
            ports.push(format!(
                "{name} port master={}{}",
                bridge.0,
                command_tokens(*settings)
            ));
            false
        }
        _ => true,
    });
    for (key, i) in &net.interfaces {
        if let (Some(Bridge::Port(bridge)), true) = (&i.bridge, is_plain_name(key)) {
            let known = present(key) || bonds.contains_key(key) || vlan_names.contains(key);
            if !known && i.problem.is_none() {
                problems.push(format!(
                    "network.interfaces.{key}: this machine has no interface {key}; bridge {} is made without it",
                    bridge.0
                ));
            }
        }
    }
    carriers.extend(
        bridges
            .iter()
            .map(|b| (b.clone(), virtual_settings(net, b), false)),
    );
    let mut made: Vec<String> = bridges.iter().map(|b| format!("{b} bridge")).collect();
    for bond in bonds.keys() {
        let mut line = format!("{bond} bond");
        if let Some(i) = net.interfaces.get(bond) {
            for (k, v) in &i.bond_opts {
                line.push_str(&format!(" bond.{k}={v}"));
            }
        }
        made.push(line);
    }
    for (bond, members) in &bonds {
        made.extend(members.iter().map(|(link, settings)| {
            format!(
                "{} slave master={bond}{}",
                link.name,
                command_tokens(*settings)
            )
        }));
    }
    made.extend(lines);
    made.extend(ports);
    made.extend(
        carriers
            .iter()
            .map(|(name, settings, dhcp)| address_line(name, *settings, *dhcp)),
    );
    Plan {
        steps: made,
        problems,
    }
}

/// The kernel modules a plan needs, which the manager loads before the network service
/// starts (the service has no `CAP_SYS_MODULE`): `bridge` for a bridge, `bonding` for a
/// bond, `8021q` for a VLAN. `max_bonds=0`: loaded with its default, the driver makes a
/// `bond0` of its own, which the service would then find made without the configured
/// options.
pub fn modules(plan: &Plan) -> Vec<String> {
    let mut wanted = Vec::new();
    for (kind, module) in [
        ("bridge", "bridge"),
        ("bond", "bonding max_bonds=0"),
        ("vlan", "8021q"),
    ] {
        if plan.steps.iter().any(|l| l.split(' ').nth(1) == Some(kind)) {
            wanted.push(module.to_string());
        }
    }
    wanted
}

/// The IPv6 settings the manager writes before the network service starts (the
/// service cannot write `/proc/sys`): router advertisements accepted on every wired link
/// and on the interfaces made later (`default`), even once an engine turns on IPv6
/// forwarding (`accept_ra=2`), so SLAAC addresses and the router's default route come
/// as the kernel gives them without forwarding. A user's own `accept_ra` setting in
/// `corral.sysctl` is left in force.
pub fn ipv6_sysctls(links: &[Link], user_sysctl: &[&str]) -> Vec<(String, String)> {
    if user_sysctl
        .iter()
        .any(|k| k.starts_with("net.ipv6.conf.") && k.ends_with(".accept_ra"))
    {
        return Vec::new();
    }
    std::iter::once("default")
        .chain(links.iter().map(|l| l.name.as_str()))
        .map(|name| {
            (
                format!("/proc/sys/net/ipv6/conf/{name}/accept_ra"),
                "2".into(),
            )
        })
        .collect()
}

/// The network service's environment: `CORRAL_NETWORK` ([`plan`]'s lines,
/// `;`-separated), `CORRAL_DNS` and `CORRAL_DNS_SEARCH` (space-separated; when set, they
/// replace what DHCP says), `CORRAL_PRE_CMDS` and `CORRAL_POST_CMDS` (the commands run
/// before and after the interfaces, each in base64, space-separated).
pub fn environment(net: &Network, plan: &Plan) -> Vec<(String, String)> {
    let mut env = vec![("CORRAL_NETWORK".to_string(), plan.steps.join(";"))];
    if !net.dns.nameservers.is_empty() {
        let servers: Vec<String> = net.dns.nameservers.iter().map(|s| s.to_string()).collect();
        env.push(("CORRAL_DNS".into(), servers.join(" ")));
    }
    if !net.dns.search.is_empty() {
        let search: Vec<&str> = net.dns.search.iter().map(|s| &**s).collect();
        env.push(("CORRAL_DNS_SEARCH".into(), search.join(" ")));
    }
    for (var, commands) in [
        ("CORRAL_PRE_CMDS", &net.pre_cmds),
        ("CORRAL_POST_CMDS", &net.post_cmds),
    ] {
        if !commands.is_empty() {
            let words: Vec<String> = commands
                .iter()
                .map(|c| command_token("x", c)[2..].to_string())
                .collect();
            env.push((var.into(), words.join(" ")));
        }
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
            plan(&Network::default(), &links()).steps,
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
            plan(&n, &links()).steps,
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
        assert_eq!(plan.problems, Vec::<String>::new());
        assert_eq!(
            plan.steps,
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
        let dhcp = Plan {
            steps: vec!["eth0 dhcp".to_string()],
            problems: Vec::new(),
        };
        assert_eq!(modules(&dhcp), Vec::<String>::new());
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
        assert_eq!(
            modules(&super::plan(&bare, &links())),
            ["bonding max_bonds=0"]
        );
    }

    fn plan_of(n: &Network) -> Vec<String> {
        plan(n, &links()).steps
    }

    #[test]
    fn bridges_are_made_first_and_their_ports_carry_no_address() {
        let n = net(
            "interfaces:\n  br0: {bridge: true, address: 10.0.5.2/24, post_up: ['ip link set $iface alias up']}\n  \
             eth1: {bridge: br0, pre_up: [[ip, link, set, $iface, alias, \"it's\"]]}\n  \
             eth2: {bond: bond0}\n  bond0: {bridge: br1}\n  br1: {dhcp: true}\n  br2: {bridge: true}\n",
        );
        let p = plan(&n, &links());
        assert_eq!(p.problems, Vec::<String>::new());
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            p.steps,
            [
                "br0 bridge".to_string(),
                "br1 bridge".into(),
                "br2 bridge".into(),
                "bond0 bond".into(),
                "eth2 slave master=bond0".into(),
                format!(
                    "eth1 port master=br0 pre={}",
                    b64("'ip' 'link' 'set' '$iface' 'alias' 'it'\\''s'")
                ),
                "bond0 port master=br1".into(),
                "eth0 dhcp".into(),
                "ens5 dhcp".into(),
                format!(
                    "br0 static addr=10.0.5.2/24 post={}",
                    b64("ip link set $iface alias up")
                ),
                "br1 dhcp".into(),
                "br2 none".into(),
            ],
            "a bond may be a bridge's port; a bridge without settings is up with no address"
        );
        assert_eq!(modules(&p), ["bridge", "bonding max_bonds=0"]);
    }

    #[test]
    fn what_cannot_be_done_is_named_and_the_rest_comes_up() {
        let n = net(
            "interfaces:\n  eth1: {mtu: 5}\n  eth2: {bond: bond0}\n  eth7: {bond: bond0}\n  \
             eth8: {bond: bond3}\n  eth9: {bridge: br0}\n  br0: {bridge: true}\n  \
             ens5: {bridge: br4}\n  br4: {bridge: true, vlans: 5000}\n",
        );
        let p = plan(&n, &links());
        assert_eq!(
            p.steps,
            [
                "br0 bridge",
                "bond0 bond",
                "eth2 slave master=bond0",
                "eth0 dhcp",
                "bond0 dhcp",
                "br0 none",
            ],
            "eth1 is left alone, ens5's bridge is not made"
        );
        assert_eq!(
            p.problems,
            [
                "network.interfaces.br4: \"5000\" is not a VLAN; write its id (1 to 4094) and, if you like, a name: 100 or 100:name; the interface it names is left unconfigured",
                "network.interfaces.eth1: mtu 5 is out of range; use 68 to 65535 (1500 on most networks); the interface it names is left unconfigured",
                "network.interfaces.eth7: this machine has no interface eth7; bond bond0 is made without it",
                "network.interfaces.eth8: this machine has no interface eth8; bond bond3 is not made: none of its interfaces is here",
                "network.interfaces.ens5: its bridge br4 is not made (its entry does not read); ens5 is left unconfigured",
                "network.interfaces.eth9: this machine has no interface eth9; bridge br0 is made without it",
            ]
        );
    }

    #[test]
    fn pre_and_post_commands_go_to_the_service_in_base64() {
        let n = net("pre_cmds: ['echo a; echo b']\npost_cmds: [[touch, /run/x y], 'true']\n");
        let env = environment(&n, &plan(&n, &links()[..1]));
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            env[1..],
            [
                ("CORRAL_PRE_CMDS".to_string(), b64("echo a; echo b")),
                (
                    "CORRAL_POST_CMDS".to_string(),
                    format!("{} {}", b64("'touch' '/run/x y'"), b64("true"))
                ),
            ]
        );
    }

    #[test]
    fn router_advertisements_are_accepted_unless_the_user_says_otherwise() {
        let l = &links()[..2];
        assert_eq!(
            ipv6_sysctls(l, &["vm.swappiness"]),
            [
                (
                    "/proc/sys/net/ipv6/conf/default/accept_ra".to_string(),
                    "2".to_string()
                ),
                ("/proc/sys/net/ipv6/conf/eth0/accept_ra".into(), "2".into()),
                ("/proc/sys/net/ipv6/conf/eth1/accept_ra".into(), "2".into()),
            ]
        );
        assert_eq!(ipv6_sysctls(l, &["net.ipv6.conf.all.accept_ra"]), []);
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
