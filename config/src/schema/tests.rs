use super::*;

fn parse(yaml: &str) -> CloudConfig {
    yaml_serde::from_str(yaml).expect("parses")
}

fn error(yaml: &str) -> String {
    yaml_serde::from_str::<CloudConfig>(yaml)
        .expect_err(yaml)
        .to_string()
}

/// Every key of the reference example reads into its field.
#[test]
fn every_key_of_the_full_example() {
    let text = include_str!("../../examples/full.yml");
    let c = parse(text);
    assert_eq!(c.hostname.as_deref(), Some("web1"));
    assert_eq!(c.authorized_keys().len(), 1);
    let files = &c.write_files;
    assert_eq!(files.len(), 5);
    assert_eq!(files[0].content, b"Welcome to web1.\n");
    assert_eq!(files[0].permissions, Mode(0o644));
    assert_eq!(files[1].permissions, Mode(0o600));
    assert_eq!(files[1].owner.as_deref(), Some("corral:corral"));
    assert_eq!(files[2].content, b"hello\n");
    assert!(files[3].append);
    assert_eq!(files[4].container.as_deref(), Some("console"));
    assert_eq!(
        c.bootcmd,
        [Command::Shell("echo bootcmd ran > /run/bootcmd".into())]
    );
    assert_eq!(
        c.runcmd[1],
        Command::Argv(vec!["touch".into(), "/run/runcmd-argv".into()])
    );
    assert_eq!(c.runcmd[1].argv(), ["touch", "/run/runcmd-argv"]);
    assert_eq!(c.runcmd[0].argv()[..2], ["/bin/sh", "-c"]);
    assert_eq!(
        c.mounts,
        [Mount {
            device: "/dev/vdb".into(),
            target: AbsPath("/mnt/data".into()),
            fstype: "ext4".into(),
            options: "defaults,noatime".into()
        }]
    );
    let k = &c.corral;
    assert_eq!(k.autologin, Autologin::Ttys(vec!["ttyS0".into()]));
    let eth0 = &k.network.interfaces["eth0"];
    assert_eq!((eth0.dhcp, eth0.mtu), (Some(true), Some(Mtu(1500))));
    let by_mac = &k.network.interfaces["mac=52:54:00:12:34:57"];
    assert_eq!(by_mac.address.as_deref(), Some("10.0.1.5/24"));
    assert_eq!(by_mac.gateway, Some("10.0.1.1".parse().expect("ip")));
    assert!(k.network.interfaces.contains_key("eth*"));
    assert_eq!(
        k.network.interfaces["eth1"].bond,
        Some(IfName("bond0".into()))
    );
    let bond = &k.network.interfaces["bond0"];
    assert_eq!(bond.bond_opts[&BondOption("mode".into())].0, "4");
    assert_eq!(bond.vlans[1].name_on("bond0"), "storage");
    assert_eq!(bond.vlans[0].name_on("bond0"), "bond0.100");
    assert_eq!(k.network.dns.nameservers.len(), 2);
    assert_eq!(k.network.dns.search[0].0, "corp.example");
    assert_eq!(k.services["hello"].0["restart"], "always");
    assert!(!k.services_include[&ServiceName("extra".into())]);
    assert_eq!(k.modules[0].0, "br_netfilter");
    assert_eq!(k.sysctl[&SysctlKey("net.ipv4.ip_forward".into())].0, "1");
    assert_eq!(
        k.environment[&EnvName("HTTP_PROXY".into())].0,
        "http://proxy.corp:3128"
    );
    assert_eq!(k.docker.extra_args, [Scalar("--debug".into())]);
    assert_eq!(k.docker.storage_driver.as_deref(), Some("overlay2"));
    assert_eq!(k.docker.log_opts["max-size"].0, "10m");
    assert_eq!(k.docker.insecure_registry, ["registry.corp:5000"]);
    assert_eq!(k.docker.bip.as_deref(), Some("172.18.0.1/16"));
    assert!(k.docker.registry_mirror.is_some() && k.docker.log_driver.is_some());
    assert_eq!(
        k.system_docker.extra_args,
        [Scalar("--log-level=warn".into())]
    );
    assert_eq!((k.ssh.port, k.ssh.daemon), (Some(22), Some(true)));
    assert_eq!(k.state.dev.as_deref(), Some("LABEL=CORRAL_STATE"));
    assert_eq!(k.state.autoformat, ["/dev/vda"]);
    assert_eq!(k.console.as_deref(), Some("default"));
    assert_eq!(k.shutdown_timeout, Some(30));
    assert_eq!(
        k.cloud_init.datasources.as_deref(),
        Some(
            &[
                DatasourceName::NoCloud(None),
                DatasourceName::Ec2,
                DatasourceName::Url("http://10.0.0.1/user-data".into()),
                DatasourceName::File("/var/lib/corral/conf/extra.yml".into())
            ][..]
        )
    );
    // RancherOS's spelling reads the same.
    let rancher = parse(&text.replace("\ncorral:\n", "\nrancher:\n"));
    assert_eq!(rancher, c);
}

#[test]
fn modules_as_pid_1_takes_them_and_the_command_line_hostname() {
    let c = parse("hostname: a\ncorral: {modules: 'dummy, loop', hostname: b}");
    assert_eq!(
        c.corral.modules,
        [ModuleName("dummy".into()), ModuleName("loop".into())]
    );
    assert_eq!(c.host_name().map(|h| &h.0[..]), Some("b"));
    assert_eq!(
        parse("hostname: a").host_name().map(|h| &h.0[..]),
        Some("a")
    );
    assert!(error("corral: {modules: ['a/b']}").contains("is not a module name"));
}

#[test]
fn empty_keys_read_as_their_defaults() {
    let c = parse("write_files:\nruncmd:\ncorral:\n  network:\n  sysctl:\n");
    assert_eq!(c, CloudConfig::default());
}

#[test]
fn modes_encodings_and_commands() {
    let mode = |m: &str| {
        parse(&format!("write_files: [{{path: /a, permissions: {m}}}]")).write_files[0].permissions
    };
    assert_eq!(mode("'0644'"), Mode(0o644));
    assert_eq!(
        mode("0644"),
        Mode(0o644),
        "unquoted, a leading zero keeps it text"
    );
    assert_eq!(mode("'755'"), Mode(0o755));
    assert_eq!(mode("0o600"), Mode(0o600));
    assert_eq!(
        mode("420"),
        Mode(0o644),
        "a number is the mode's value, as cloud-init"
    );
    assert!(error("write_files: [{path: /a, permissions: '0999'}]").contains("not a file mode"));
    assert!(error("write_files: [{path: /a, permissions: 99999}]").contains("not a file mode"));
    let gz_b64 = "H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==";
    let c = parse(&format!(
        "write_files: [{{path: /a, encoding: gz+b64, content: {gz_b64}}}]"
    ));
    assert_eq!(c.write_files[0].content, b"hello");
    assert_eq!(decode("aGk=", Encoding::Base64).expect("b64"), b"hi");
    assert!(decode("!!!", Encoding::Base64).is_err());
    assert!(decode("not gzip", Encoding::Gzip).is_err());
    assert!(error("runcmd: [{a: 1}]").contains("a command is a line of shell"));
    assert!(
        parse("runcmd: ['']").runcmd.is_empty(),
        "an empty item is skipped"
    );
    assert_eq!(
        parse("bootcmd: [[echo, 1]]").bootcmd[0].argv(),
        ["echo", "1"]
    );
}

#[test]
fn bad_values_are_named_with_their_key_and_a_hint() {
    let cases = [
        (
            "hostname: -bad-",
            "hostname: \"-bad-\" is not a valid host name",
        ),
        (
            "hostname: [a]",
            "hostname: invalid type: sequence, expected a value",
        ),
        (
            "write_files: [{path: etc/x}]",
            "write_files[0].path: \"etc/x\" is not an absolute path",
        ),
        (
            "write_files: [{content: x}]",
            "write_files[0]: missing field `path`",
        ),
        (
            "write_files: [{path: /x, encoding: rot13}]",
            "write_files[0].encoding: \"rot13\" is not an encoding Corral knows",
        ),
        (
            "write_files: [{path: /x, owner: 'a b'}]",
            "write_files: write_files entry for /x: owner \"a b\"",
        ),
        ("mounts: [[/dev/vdb]]", "mounts: a mount is a list"),
        (
            "mounts: [[/dev/vdb, mnt]]",
            "mounts: mount point \"mnt\" is not an absolute path",
        ),
        (
            "corral: {network: {dns: {nameservers: [dns.google]}}}",
            "corral.network.dns.nameservers[0]: invalid IP address syntax",
        ),
        (
            "corral: {services: {web: {restart: always}}}",
            "corral.services: a service is a docker-compose service with an image",
        ),
        (
            "corral: {services_include: {'a b': true}}",
            "is not a service name",
        ),
        (
            "corral: {modules: ['../evil']}",
            "corral.modules[0]: \"../evil\" is not a module name",
        ),
        (
            "corral: {sysctl: {'net/../../x': 1}}",
            "is not a sysctl key",
        ),
        ("corral: {sysctl: {kernel.x: [1]}}", "expected a value"),
        (
            "corral: {environment: {1BAD: x}}",
            "\"1BAD\" is not an environment variable name",
        ),
        (
            "corral: {docker: {environment: 3}}",
            "corral.docker: environment is a list of KEY=VALUE",
        ),
        (
            "corral: {ssh: {port: 70000}}",
            "corral.ssh.port: invalid value: integer `70000`",
        ),
        (
            "corral: {console: \"two words\"}",
            "corral.console: \"two words\" is not a console name",
        ),
        (
            "corral: {shutdown_timeout: soon}",
            "corral.shutdown_timeout: invalid type: string \"soon\"",
        ),
        (
            "corral: {cloud_init: {datasources: [gce]}}",
            "\"gce\" is not a datasource Corral knows",
        ),
        (
            "corral: {cloud_init: {datasources: ['file:relative']}}",
            "\"file:relative\" is not a datasource Corral knows",
        ),
        (
            "corral: {cloud_config_url: ftp://x}",
            "corral.cloud_config_url: \"ftp://x\" is not a URL",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|(yaml, want)| (yaml, want, error(yaml)))
        .filter(|(_, want, got)| !got.contains(*want))
        .map(|(yaml, want, got)| format!("{yaml}: want {want:?} in {got:?}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn datasources_print_as_they_are_written() {
    for s in [
        "cmdline",
        "nocloud",
        "nocloud:/media/cidata",
        "configdrive",
        "ec2",
        "url:https://x/y",
        "file:/a",
    ] {
        assert_eq!(s.parse::<DatasourceName>().expect(s).to_string(), s);
    }
}

#[test]
fn keys_from_both_places_are_merged_once() {
    let c = parse("ssh_authorized_keys: [a, b]\ncorral:\n  ssh_authorized_keys: [b, ' c ', '']\n");
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

#[test]
fn empty_commands_are_skipped_as_rancheros_skipped_them() {
    let c = parse("runcmd:\n  - []\n  - ''\n  -\n  - echo hi\n  - [ls, /]\nbootcmd: ~\n");
    assert_eq!(
        c.runcmd,
        [
            Command::Shell("echo hi".into()),
            Command::Argv(vec!["ls".into(), "/".into()])
        ]
    );
    assert!(c.bootcmd.is_empty());
}

#[test]
fn proxies_become_the_environment_in_both_cases() {
    let c = parse(
        "rancher:\n  network:\n    http_proxy: http://p:3128\n    https_proxy: http://p:3129\n    no_proxy: localhost,.corp\n",
    );
    let env = c.corral.network.proxy_environment();
    for (k, v) in [
        ("HTTP_PROXY", "http://p:3128"),
        ("http_proxy", "http://p:3128"),
        ("HTTPS_PROXY", "http://p:3129"),
        ("https_proxy", "http://p:3129"),
        ("NO_PROXY", "localhost,.corp"),
        ("no_proxy", "localhost,.corp"),
    ] {
        assert!(
            env.contains(&(k.to_string(), v.to_string())),
            "{k}: {env:?}"
        );
    }
    assert!(parse("corral: {}")
        .corral
        .network
        .proxy_environment()
        .is_empty());
    assert!(error("corral: {network: {http_proxy: 'p 3128'}}").contains("is not a proxy address"));
    let c = parse("corral: {network: {http_proxy: 'proxy.corp:3128'}}");
    assert_eq!(c.corral.network.proxy_environment()[0].1, "proxy.corp:3128");
}

#[test]
fn registry_auths_read_as_rancheros_writes_them() {
    let c = parse(
        "rancher:\n  registry_auths:\n    https://index.docker.io/v1/:\n      auth: dXNlcjpwYXNz\n      email: a@b.c\n    reg.corp:5000: {username: u, password: p}\n",
    );
    let auths = &c.corral.registry_auths;
    assert_eq!(auths.len(), 2);
    assert_eq!(
        auths["https://index.docker.io/v1/"].docker_entry(),
        Some(serde_json::json!({"auth": "dXNlcjpwYXNz"}))
    );
    assert_eq!(
        auths["reg.corp:5000"].docker_entry(),
        Some(serde_json::json!({"auth": "dTpw"}))
    );
}

#[test]
fn cloud_init_users_read_with_their_groups_sudo_and_keys() {
    let c = parse(
        "users:\n  - default\n  - name: alice\n    groups: docker, adm\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys: [ssh-ed25519 AAAA a@b]\n    lock_passwd: true\n  - name: bob\n    groups: [docker]\n    sudo: false\n",
    );
    let accounts: Vec<&UserSpec> = c.accounts().collect();
    assert_eq!(c.users[0], UserEntry::Default);
    assert_eq!(accounts.len(), 2);
    assert_eq!(&*accounts[0].name, "alice");
    let groups: Vec<&str> = accounts[0].groups.iter().map(|g| &**g).collect();
    assert_eq!(groups, ["docker", "adm"]);
    assert_eq!(&*accounts[0].sudo[0], "ALL=(ALL) NOPASSWD:ALL");
    assert!(accounts[1].sudo.is_empty());
    // What Corral cannot make is left out with its reason; the file still reads.
    for (bad, says) in [
        ("users: [{name: Alice}]", "is not an account name"),
        (
            "users: [{name: a, sudo: \"ALL\\nroot ALL\"}]",
            "is not a sudoers rule",
        ),
        (
            "users: [{name: a, sudo: \",ALL ALL=(ALL) ALL\"}]",
            "is not a sudoers rule",
        ),
        (
            "users: [{name: a, sudo: \"ALL=(ALL\"}]",
            "is not a sudoers rule",
        ),
        ("users: [Bob]", "is not an account name"),
        ("users: [{name: a, sudo: true}]", "sudo is a rule"),
    ] {
        let c = parse(bad);
        assert!(
            matches!(&c.users[0], UserEntry::Invalid(e) if e.contains(says)),
            "{bad}: {:?}",
            c.users
        );
        assert_eq!(c.accounts().count(), 0);
    }
    let c = parse("users: [default, bob]");
    assert_eq!(c.accounts().map(|u| &*u.name).collect::<Vec<_>>(), ["bob"]);
}

/// An interface entry that does not read is kept with why, and read no further: that
/// interface alone is left unconfigured (RancherOS's netconf logged it and went on).
#[test]
fn a_bad_interface_entry_is_kept_with_its_problem() {
    for (entry, says) in [
        ("{address: 10.0.0.5}", "\"10.0.0.5\" has no prefix length"),
        (
            "{address: 10.0.0.5/33}",
            "the prefix length must be 0 to 32",
        ),
        ("{gateway: 10.0.0}", "invalid IP address syntax"),
        ("{mtu: 20}", "mtu 20 is out of range"),
        ("{vlans: 4095}", "is not a VLAN"),
        ("{bond: 'bond 0'}", "is not an interface name"),
        ("{bridge: 'br 0'}", "is neither true nor a bridge's name"),
        ("{pre_up: [{a: 1}]}", "a command is a line of shell"),
        ("[not, a, map]", "invalid type"),
    ] {
        let c = parse(&format!(
            "corral: {{network: {{interfaces: {{eth0: {entry}, eth1: {{dhcp: true}}}}}}}}"
        ));
        let net = &c.corral.network;
        let eth0 = &net.interfaces["eth0"];
        assert!(
            eth0.problem.as_deref().is_some_and(|p| p.contains(says)),
            "{entry}: {eth0:?}"
        );
        assert_eq!(eth0.address, None);
        assert_eq!(net.interfaces["eth1"].problem, None, "{entry}");
        assert_eq!(net.interfaces["eth1"].dhcp, Some(true));
        assert_eq!(net.problems().count(), 1);
    }
    // A bridge is made under its entry's name, which must be one.
    let c = parse("corral: {network: {interfaces: {'br*': {bridge: true}}}}");
    let p = c.corral.network.interfaces["br*"].problem.clone();
    assert!(p.is_some_and(|p| p.contains("is not an interface name")));
}

#[test]
fn bridges_and_commands_read_as_rancheros_writes_them() {
    let c = parse(
        "corral:\n  network:\n    pre_cmds: ['echo pre', []]\n    post_cmds: [[touch, /run/x]]\n    interfaces:\n      \
         br0: {bridge: true, address: 10.0.5.2/24, post_up: ['ip link set $iface alias up']}\n      \
         br1: {bridge: 'true'}\n      eth3: {bridge: br0, pre_up: ['ip link set $iface mtu 1400']}\n      \
         eth4: {bridge: false}\n      eth5: {bridge: ''}\n",
    );
    let net = &c.corral.network;
    assert_eq!(net.pre_cmds, [Command::Shell("echo pre".into())]);
    assert_eq!(
        net.post_cmds,
        [Command::Argv(vec!["touch".into(), "/run/x".into()])]
    );
    assert_eq!(net.interfaces["br0"].bridge, Some(Bridge::Own));
    assert_eq!(net.interfaces["br1"].bridge, Some(Bridge::Own));
    assert_eq!(
        net.interfaces["eth3"].bridge,
        Some(Bridge::Port(IfName("br0".into())))
    );
    assert_eq!(
        net.interfaces["eth3"].pre_up,
        [Command::Shell("ip link set $iface mtu 1400".into())]
    );
    assert_eq!(net.interfaces["eth4"].bridge, None);
    assert_eq!(net.interfaces["eth5"].bridge, None);
    assert_eq!(net.interfaces["br0"].post_up.len(), 1);
    assert_eq!(net.problems().count(), 0);
}

#[test]
fn a_time_zone_is_a_tz_name_or_a_warning() {
    for (yaml, want) in [
        ("timezone: Europe/Paris", Ok(Some("Europe/Paris"))),
        ("timezone: UTC", Ok(Some("UTC"))),
        ("timezone: Etc/GMT+5", Ok(Some("Etc/GMT+5"))),
        (
            "timezone: America/Argentina/Buenos_Aires",
            Ok(Some("America/Argentina/Buenos_Aires")),
        ),
        ("hostname: a", Ok(None)),
    ] {
        assert_eq!(parse(yaml).time_zone(), want, "{yaml}");
    }
    for yaml in [
        "timezone: ../../etc/shadow",
        "timezone: /usr/share/zoneinfo/UTC",
        "timezone: \"Europe/Paris\\nx\"",
        "timezone: Europe//Paris",
        "timezone: 'a b'",
        "timezone: ''",
    ] {
        let why = parse(yaml).time_zone().expect_err(yaml);
        assert!(why.contains("is not a time zone's name"), "{yaml}: {why}");
    }
}

#[test]
fn swarm_settings_are_checked_where_they_are_written() {
    let token =
        "SWMTKN-1-0sv3nnqgyipq11dzyboeazgblvtwh0mrwi4nn6g9byk3l783r4-56dxio35t8husfcylxo91ge7a";
    let c = parse("corral:\n  swarm:\n    init: true\n    advertise_addr: '10.0.0.1:2377'\n    listen_addr: eth1\n");
    let SwarmRole::Init(init) = c.corral.swarm.role else {
        panic!("init")
    };
    assert_eq!(init.advertise_addr.as_deref(), Some("10.0.0.1:2377"));
    assert_eq!(
        parse("corral: {swarm: {init: false}}").corral.swarm.role,
        SwarmRole::Unset
    );
    assert_eq!(
        parse("corral: {swarm: }").corral.swarm.role,
        SwarmRole::Unset
    );
    let v2 = format!("SWMTKN-2-1-{}", &token["SWMTKN-1-".len()..]);
    for good in [token.to_string(), v2] {
        let c = parse(&format!(
            "rancher: {{swarm: {{join: {{remote_addrs: ['[fd00::1]:2377'], token: {good}}}}}}}"
        ));
        assert!(matches!(c.corral.swarm.role, SwarmRole::Join(_)));
    }
    let join = |extra: &str| {
        format!("corral: {{swarm: {{join: {{remote_addrs: [10.0.0.1], token: {token}{extra}}}}}}}")
    };
    let cases = [
        (
            format!("corral: {{swarm: {{init: true, join: {{remote_addrs: [10.0.0.1], token: {token}}}}}}}"),
            "corral: swarm.init and swarm.join are both set",
        ),
        (
            "corral: {swarm: {advertise_addr: eth0}}".to_string(),
            "corral: swarm.advertise_addr is set but swarm.init is not",
        ),
        (
            "corral: {swarm: {init: true, advertise_addr: '10.0.0.300'}}".to_string(),
            "corral.swarm.advertise_addr: \"10.0.0.300\" is not an address or an interface name",
        ),
        (
            "corral: {swarm: {init: true, listen_addr: 'eth1:99999'}}".to_string(),
            "corral.swarm.listen_addr: \"eth1:99999\" is not an address",
        ),
        (
            "corral: {swarm: {init: true, default_addr_pool: [10.20.0.0]}}".to_string(),
            "corral.swarm.default_addr_pool[0]: \"10.20.0.0\" has no prefix length",
        ),
        (
            format!("corral: {{swarm: {{join: {{remote_addrs: [], token: {token}}}}}}}"),
            "corral.swarm.join: remote_addrs is empty",
        ),
        (
            format!("corral: {{swarm: {{join: {{remote_addrs: ['bad host'], token: {token}}}}}}}"),
            "corral.swarm.join.remote_addrs[0]: \"bad host\" is not a manager's address",
        ),
        (
            "corral: {swarm: {join: {remote_addrs: [10.0.0.1]}}}".to_string(),
            "corral.swarm.join: missing field `token`",
        ),
        (
            "corral: {swarm: {init: true, data_path_addr: 'eth1:4789'}}".to_string(),
            "corral: swarm.data_path_addr \"eth1:4789\" has a port",
        ),
        (
            join(", data_path_addr: '10.0.0.5:1'"),
            "corral: swarm.join.data_path_addr \"10.0.0.5:1\" has a port",
        ),
        (
            format!("corral: {{swarm: {{join: {{remote_addrs: ['10.0.0.256'], token: {token}}}}}}}"),
            "corral.swarm.join.remote_addrs[0]: \"10.0.0.256\" is not a manager's address",
        ),
        (
            join(", advertise_addr: 'a b'"),
            "corral.swarm.join.advertise_addr: \"a b\" is not an address",
        ),
        (
            "corral: {swarm: {init: true, advertise_addr: '[10.0.0.1]'}}".to_string(),
            "corral.swarm.advertise_addr: \"[10.0.0.1]\" is not an address",
        ),
        (
            "corral: {swarm: {init: true, listen_addr: '[eth1]:2377'}}".to_string(),
            "corral.swarm.listen_addr: \"[eth1]:2377\" is not an address",
        ),
        (
            format!("corral: {{swarm: {{join: {{remote_addrs: ['[manager.example.com]:2377'], token: {token}}}}}}}"),
            "corral.swarm.join.remote_addrs[0]: \"[manager.example.com]:2377\" is not a manager's address",
        ),
        (
            format!(
                "corral: {{swarm: {{init: true, default_addr_pool: [{}]}}}}",
                vec!["10.0.0.0/8"; 17].join(", ")
            ),
            "default_addr_pool lists 17 entries; at most 16",
        ),
    ];
    for (yaml, want) in cases {
        let e = error(&yaml);
        assert!(e.contains(want), "{yaml}\n  gave: {e}\n  want: {want}");
    }
    let e = error(&join("").replace("56dxio35t8husfcylxo91ge7a", "56dxio35t8husfcylxo91ge7A"));
    assert!(
        e.contains(
            "corral.swarm.join.token: the value (not shown: a secret) is not a swarm join token"
        ),
        "{e}"
    );
    assert!(!e.contains("0sv3nnqgyipq"), "the token is echoed: {e}");
}

#[test]
fn swarm_labels_and_availability_are_checked() {
    let c = parse(
        "corral:\n  swarm:\n    labels: {zone: a, com.example/disk: ssd, n: 3}\n    availability: drain\n",
    );
    let labels: Vec<(String, String)> = c
        .corral
        .swarm
        .labels
        .iter()
        .map(|(k, v)| (k.0.clone(), v.0.clone()))
        .collect();
    assert_eq!(
        labels,
        [
            ("com.example/disk".to_string(), "ssd".to_string()),
            ("n".into(), "3".into()),
            ("zone".into(), "a".into())
        ]
    );
    assert_eq!(c.corral.swarm.availability, Some(Availability::Drain));
    assert_eq!(c.corral.swarm.role, SwarmRole::Unset);
    for (yaml, want) in [
        (
            "corral: {swarm: {availability: asleep}}".to_string(),
            "corral.swarm.availability: unknown variant `asleep`",
        ),
        (
            "corral: {swarm: {labels: {'bad key': x}}}".to_string(),
            "\"bad key\" is not a label key",
        ),
        (
            "corral: {swarm: {labels: {k: \"a\\nb\"}}}".to_string(),
            "is not a label value",
        ),
        (
            format!(
                "corral: {{swarm: {{labels: {{{}}}}}}}",
                (0..65)
                    .map(|i| format!("k{i}: v"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "labels holds 65 entries; at most 64",
        ),
    ] {
        let e = error(&yaml);
        assert!(e.contains(want), "{yaml}\n  gave: {e}\n  want: {want}");
    }
}
