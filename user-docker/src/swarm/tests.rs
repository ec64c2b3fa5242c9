use super::cli::{describe, snippet};
use super::status::{Phase, Status};
use super::*;
use bollard::models::PeerNode;
use corral_config::CloudConfig;

const TOKEN: &str =
    "SWMTKN-1-0sv3nnqgyipq11dzyboeazgblvtwh0mrwi4nn6g9byk3l783r4-56dxio35t8husfcylxo91ge7a";

fn role(yaml: &str) -> SwarmRole {
    let c: CloudConfig = yaml_serde::from_str(yaml).expect("parses");
    c.corral.swarm.role
}

fn join_yaml(addrs: &str) -> String {
    format!("corral:\n  swarm:\n    join:\n      remote_addrs: {addrs}\n      token: {TOKEN}\n      advertise_addr: eth1\n")
}

fn info(state: LocalNodeState, manager: bool, managers: &[&str]) -> SwarmInfo {
    SwarmInfo {
        local_node_state: Some(state),
        control_available: Some(manager),
        remote_managers: Some(
            managers
                .iter()
                .map(|a| PeerNode {
                    node_id: Some("n".into()),
                    addr: Some(a.to_string()),
                })
                .collect(),
        ),
        ..Default::default()
    }
}

#[test]
fn init_and_join_requests_carry_every_setting_with_swarm_s_defaults() {
    assert_eq!(request(&SwarmRole::Unset), None);
    let init = role(
        "corral:\n  swarm:\n    init: true\n    advertise_addr: eth1\n    default_addr_pool: [10.20.0.0/16]\n",
    );
    let Some(Request::Init(r)) = request(&init) else {
        panic!("an init request")
    };
    assert_eq!(r.advertise_addr.as_deref(), Some("eth1"));
    assert_eq!(r.listen_addr.as_deref(), Some("0.0.0.0:2377"));
    // A listen address without a port gets Swarm's.
    for (given, sent) in [
        ("eth1", "eth1:2377"),
        ("'[fd00::1]'", "[fd00::1]:2377"),
        ("'fd00::1'", "[fd00::1]:2377"),
        ("'10.0.0.1:2400'", "10.0.0.1:2400"),
    ] {
        let r = request(&role(&format!(
            "corral: {{swarm: {{init: true, listen_addr: {given}}}}}"
        )));
        let Some(Request::Init(r)) = r else {
            panic!("init")
        };
        assert_eq!(r.listen_addr.as_deref(), Some(sent), "{given}");
    }
    assert_eq!(r.default_addr_pool, Some(vec!["10.20.0.0/16".to_string()]));
    assert_eq!(r.data_path_addr, None);

    let join = role(&join_yaml(
        "[10.0.0.1, '10.0.0.2:2400', manager.example.com, 'fd00::1']",
    ));
    let Some(Request::Join(r)) = request(&join) else {
        panic!("a join request")
    };
    assert_eq!(
        r.remote_addrs.as_deref().unwrap_or_default(),
        [
            "10.0.0.1:2377",
            "10.0.0.2:2400",
            "manager.example.com:2377",
            "[fd00::1]:2377"
        ]
    );
    assert_eq!(r.join_token.as_deref(), Some(TOKEN));
    assert_eq!(r.advertise_addr.as_deref(), Some("eth1"));
}

#[test]
fn the_fingerprint_follows_every_setting_the_token_included() {
    assert_eq!(fingerprint(&SwarmRole::Unset), None);
    let a = fingerprint(&role(&join_yaml("[10.0.0.1]"))).expect("a print");
    assert_eq!(a.len(), 64);
    assert_eq!(
        fingerprint(&role(&join_yaml("[10.0.0.1]"))),
        Some(a.clone())
    );
    assert_ne!(
        fingerprint(&role(&join_yaml("[10.0.0.2]"))),
        Some(a.clone())
    );
    let other_token = join_yaml("[10.0.0.1]").replace("56dxio", "56dxip");
    assert_ne!(fingerprint(&role(&other_token)), Some(a));
}

#[test]
fn a_node_is_left_where_it_is_unless_it_is_in_no_swarm() {
    let init = request(&role("corral:\n  swarm:\n    init: true\n")).expect("init");
    let join = request(&role(&join_yaml("[10.0.0.1]"))).expect("join");
    let inactive = info(LocalNodeState::INACTIVE, false, &[]);
    assert_eq!(
        decide(&init, &inactive, MadeBy::Unknown, false),
        Decision::Apply
    );
    assert_eq!(
        decide(&join, &SwarmInfo::default(), MadeBy::Unknown, false),
        Decision::Apply
    );
    assert!(matches!(
        decide(
            &join,
            &info(LocalNodeState::PENDING, false, &[]),
            MadeBy::Unknown,
            false
        ),
        Decision::Wait(_)
    ));
    let manager = info(LocalNodeState::ACTIVE, true, &["10.0.0.1:2377"]);
    assert!(matches!(
        decide(&init, &manager, MadeBy::Unknown, false),
        Decision::Done(_)
    ));
    assert!(matches!(
        decide(&join, &manager, MadeBy::Unknown, false),
        Decision::Done(_)
    ));
    let worker_elsewhere = info(LocalNodeState::ACTIVE, false, &["10.9.9.9:2377"]);
    let Decision::LeftAlone(why) = decide(&join, &worker_elsewhere, MadeBy::Unknown, false) else {
        panic!("another swarm is left alone")
    };
    assert!(
        why.contains("10.9.9.9:2377") && why.contains("corral swarm leave"),
        "{why}"
    );
    assert!(matches!(
        decide(&init, &worker_elsewhere, MadeBy::Unknown, false),
        Decision::LeftAlone(_)
    ));
    // Managers named by host name cannot be compared: taken as the swarm asked for.
    let by_name = request(&role(&join_yaml("[manager.example.com]"))).expect("join");
    assert!(matches!(
        decide(&by_name, &worker_elsewhere, MadeBy::Unknown, false),
        Decision::Done(_)
    ));
    // What Corral made from these settings is done, through whatever address it joined;
    // made from settings that have changed since: reported, not forced.
    assert!(matches!(
        decide(&join, &worker_elsewhere, MadeBy::TheseSettings, false),
        Decision::Done(_)
    ));
    let Decision::LeftAlone(why) = decide(&join, &worker_elsewhere, MadeBy::OtherSettings, false)
    else {
        panic!("changed settings are not forced")
    };
    assert!(
        why.contains("changed") && why.contains("not forced"),
        "{why}"
    );
    // A node still joining is waited for, whoever made it.
    assert!(matches!(
        decide(
            &join,
            &info(LocalNodeState::PENDING, false, &[]),
            MadeBy::OtherSettings,
            false
        ),
        Decision::Wait(_)
    ));
    for state in [LocalNodeState::LOCKED, LocalNodeState::ERROR] {
        assert!(matches!(
            decide(&join, &info(state, false, &[]), MadeBy::Unknown, false),
            Decision::LeftAlone(_)
        ));
    }
    // An error after this run's own request (a join the engine gave up in the
    // background) is cleared and retried; the rest is decided as before.
    let mut gave_up = info(LocalNodeState::ERROR, false, &[]);
    gave_up.error = Some("rpc error: context deadline exceeded".into());
    let Decision::Retry(why) = decide(&join, &gave_up, MadeBy::Unknown, true) else {
        panic!("our own failed join is retried")
    };
    assert!(why.contains("context deadline exceeded"), "{why}");
    assert_eq!(
        decide(&join, &inactive, MadeBy::Unknown, true),
        Decision::Apply
    );
    assert!(matches!(
        decide(
            &join,
            &info(LocalNodeState::LOCKED, false, &[]),
            MadeBy::Unknown,
            true
        ),
        Decision::LeftAlone(_)
    ));
}

#[test]
fn the_engine_is_sent_the_request_with_docker_s_availability_field() {
    let join = request(&role(&join_yaml("[10.0.0.1]"))).expect("join");
    assert_eq!(join.path(), "/swarm/join");
    let sent = body(&join, Some(Availability::Drain));
    assert_eq!(sent["Availability"], "drain");
    assert_eq!(sent["RemoteAddrs"], serde_json::json!(["10.0.0.1:2377"]));
    assert_eq!(sent["JoinToken"], TOKEN);
    assert_eq!(sent["AdvertiseAddr"], "eth1");
    assert!(body(&join, None).get("Availability").is_none());
    let init = request(&role("corral:\n  swarm:\n    init: true\n")).expect("init");
    assert_eq!(init.path(), "/swarm/init");
    // An IPv6 address without a port goes to the engine without brackets.
    let Some(Request::Init(r)) = request(&role(
        "corral: {swarm: {init: true, advertise_addr: '[fd00::1]', data_path_addr: '[fd00::2]'}}",
    )) else {
        panic!("init")
    };
    assert_eq!(r.advertise_addr.as_deref(), Some("fd00::1"));
    assert_eq!(r.data_path_addr.as_deref(), Some("fd00::2"));
    let sent = body(&init, Some(Availability::Pause));
    assert_eq!(sent["Availability"], "pause");
    assert_eq!(sent["ListenAddr"], "0.0.0.0:2377");
}

#[test]
fn the_token_never_shows_in_debug_output_errors_or_redacted_messages() {
    let join = role(&join_yaml("[10.0.0.1]"));
    assert!(!format!("{join:?}").contains(TOKEN));
    let req = request(&join).expect("a join");
    assert!(!format!("{req:?}").contains(TOKEN), "{req:?}");
    assert!(format!("{req:?}").contains("10.0.0.1:2377"), "{req:?}");
    let msg = format!("rpc error: token {TOKEN} refused");
    assert_eq!(
        redact(&msg, Some(TOKEN)),
        "rpc error: token <token> refused"
    );
    assert_eq!(redact("plain", None), "plain");
    let bad = join_yaml("[10.0.0.1]").replace("56dxio35t8husfcylxo91ge7a", "short");
    let err = yaml_serde::from_str::<CloudConfig>(&bad)
        .expect_err("a malformed token")
        .to_string();
    assert!(err.contains("corral.swarm.join.token"), "{err}");
    assert!(!err.contains("0sv3nnqgyipq"), "the token is echoed: {err}");
}

#[test]
fn the_printed_snippet_reads_back_as_the_same_join() {
    let text = snippet(&["10.0.0.1:2377".into(), "10.0.0.2:2377".into()], TOKEN);
    let SwarmRole::Join(join) = role(&text) else {
        panic!("a join: {text}")
    };
    assert_eq!(join.token.secret(), TOKEN);
    assert_eq!(
        join.remote_addrs
            .iter()
            .map(|p| p.0.as_str())
            .collect::<Vec<_>>(),
        ["10.0.0.1:2377", "10.0.0.2:2377"]
    );
}

#[test]
fn status_says_what_the_engine_and_the_manager_say() {
    let mut active = info(LocalNodeState::ACTIVE, true, &["10.0.0.1:2377"]);
    active.node_id = Some("abc".into());
    active.node_addr = Some("10.0.0.1".into());
    active.nodes = Some(3);
    active.managers = Some(1);
    let s = Status {
        wanted: "init".into(),
        phase: Phase::Done,
        message: "started a swarm".into(),
        attempts: 1,
        at: 12.5,
    };
    let text = describe(&active, Some(&s));
    for want in [
        "active, this node a manager",
        "abc at 10.0.0.1",
        "3 nodes, 1 managers",
        "init (done, 1 attempt(s)",
        "started a swarm",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    let text = describe(&SwarmInfo::default(), None);
    assert!(
        text.contains("not in a swarm") && text.contains("try sudo"),
        "{text}"
    );
}

#[test]
fn the_status_file_round_trips_and_the_left_marker_matches_only_its_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run/swarm.json");
    let s = Status {
        wanted: "join".into(),
        phase: Phase::Retrying,
        message: "join attempt 1 failed".into(),
        attempts: 1,
        at: 3.0,
    };
    s.save(&path).expect("save");
    assert_eq!(Status::load(&path), Some(s));
    std::fs::write(&path, "{not json").expect("write");
    assert_eq!(Status::load(&path), None);
    let left = dir.path().join("lib/swarm-left");
    assert!(!status::left_with(&left, "abc"));
    status::record_left(&left, "abc").expect("record");
    assert!(status::left_with(&left, "abc"));
    assert!(!status::left_with(&left, "abd"));
    let made = dir.path().join("lib/swarm-made");
    assert_eq!(status::made_by(&made, "abc", Some("n1")), MadeBy::Unknown);
    status::record_made(&made, "abc", "n1").expect("record");
    assert_eq!(
        status::made_by(&made, "abc", Some("n1")),
        MadeBy::TheseSettings
    );
    assert_eq!(
        status::made_by(&made, "abd", Some("n1")),
        MadeBy::OtherSettings
    );
    assert_eq!(status::made_by(&made, "abc", Some("n2")), MadeBy::Unknown);
    assert_eq!(status::made_by(&made, "abc", None), MadeBy::Unknown);
}

#[test]
fn node_labels_go_where_the_user_s_own_engine_labels_are() {
    let c: CloudConfig =
        yaml_serde::from_str("corral: {swarm: {labels: {zone: a, disk: ssd}}}").expect("parses");
    let labels = &c.corral.swarm.labels;
    let mut p = crate::daemon::defaults(None);
    add_labels(&mut p, labels);
    assert_eq!(
        p.daemon_json["labels"],
        serde_json::json!(["disk=ssd", "zone=a"])
    );
    // A user's daemon.json labels first, then these.
    let mut p = crate::daemon::defaults(None);
    p.daemon_json
        .insert("labels".into(), serde_json::json!(["team=web"]));
    add_labels(&mut p, labels);
    assert_eq!(
        p.daemon_json["labels"],
        serde_json::json!(["team=web", "disk=ssd", "zone=a"])
    );
    // Labels in the user's flags: flags too, never both places.
    let mut p = crate::daemon::defaults(None);
    p.flags.push("--label=team=web".into());
    add_labels(&mut p, labels);
    assert!(!p.daemon_json.contains_key("labels"));
    assert!(p
        .flags
        .ends_with(&["--label=disk=ssd".to_string(), "--label=zone=a".to_string()]));
    // Given as two words (`--label zone=c`): seen as the user's, flags too.
    let mut p = crate::daemon::defaults(None);
    p.flags
        .extend(["--label".to_string(), "zone=c".to_string()]);
    let warnings = add_labels(&mut p, labels);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(p
        .flags
        .ends_with(&["zone=c".to_string(), "--label=disk=ssd".to_string()]));
    assert!(!p.daemon_json.contains_key("labels"));
    // A key the user's labels set already: theirs stays, with a warning.
    let mut p = crate::daemon::defaults(None);
    p.daemon_json
        .insert("labels".into(), serde_json::json!(["zone=c"]));
    let warnings = add_labels(&mut p, labels);
    assert_eq!(
        p.daemon_json["labels"],
        serde_json::json!(["zone=c", "disk=ssd"])
    );
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("corral.swarm.labels.zone"),
        "{warnings:?}"
    );
    // None: nothing changes.
    let mut p = crate::daemon::defaults(None);
    add_labels(&mut p, &Default::default());
    assert!(!p.daemon_json.contains_key("labels"));
}
