//! `corral tls generate` (RancherOS's `ros tls generate`): a new CA and the user engine's
//! server and client certificates, made by `corral-user-docker` into the engine's TLS
//! folder, with the client's copy given to the `corral` user. The engine reads its files
//! when it starts; this module never restarts it, the answer says how.

use corral_api::protocol::{Response, Tls};
use corral_config::store::Effective;
use corral_user_docker::service::Dirs;
use corral_user_docker::tls;

/// The most names `tls generate` takes besides the machine's own.
pub const MAX_NAMES: usize = 64;

/// Renews the engine's certificates in `dirs` for the machine's `own` names and the
/// user's `hostnames`, unless the configuration supplies its own certificates.
pub fn generate(
    effective: &Effective,
    dirs: &Dirs,
    own: &[String],
    hostnames: &[String],
) -> Response {
    if hostnames.len() > MAX_NAMES {
        return Response::user(format!(
            "{} host names given; the server certificate takes at most {MAX_NAMES} besides the machine's own",
            hostnames.len()
        ));
    }
    if let Some(bad) = hostnames.iter().find_map(|n| tls::check_name(n).err()) {
        return Response::user(bad.to_string());
    }
    let engine = &effective.config.corral.docker;
    match tls::Supplied::from_engine(engine) {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Response::user(
                "the configuration supplies the user engine's certificates \
                 (corral.docker.ca_cert, server_cert and server_key), which replace generated ones \
                 at every boot; change them there, or remove them (sudo corral config export \
                 shows where they are set) to have Corral make its own",
            )
        }
        Err(e) => {
            return Response::user(format!(
                "{e}; supplied certificates replace generated ones, so fix or remove them first"
            ))
        }
    }
    let mut names = own.to_vec();
    names.extend(hostnames.iter().cloned());
    let names = match tls::renew(&dirs.tls, &names) {
        Ok(n) => n,
        Err(e) => return Response::system(e.to_string()),
    };
    let client = match &dirs.client {
        Some((home, uid, gid)) => match tls::install_client(&dirs.tls, home, *uid, *gid) {
            Ok(copied) => copied,
            Err(e) => {
                return Response::system(format!(
                    "{e}; the engine's new files are in {}",
                    dirs.tls.display()
                ))
            }
        },
        None => Vec::new(),
    };
    Response::ok(&Tls {
        dir: dirs.tls.display().to_string(),
        names,
        client: client.iter().map(|p| p.display().to_string()).collect(),
        enabled: engine.tls == Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_api::ErrorKind;

    /// The configuration in force from one YAML text.
    fn effective(yaml: &str) -> Effective {
        let value: yaml_serde::Value = yaml_serde::from_str(yaml).expect("yaml");
        Effective {
            config: yaml_serde::from_value(value.clone()).expect("config"),
            value,
            ..Effective::default()
        }
    }

    fn kind(r: &Response) -> Option<ErrorKind> {
        match r {
            Response::Error { kind, .. } => Some(*kind),
            Response::Ok { .. } => None,
        }
    }

    #[test]
    fn new_files_for_the_machine_and_the_names_given_and_the_client_gets_its_copy() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = Dirs::under(tmp.path());
        let r = generate(
            &effective("corral:\n  docker:\n    tls: true\n"),
            &d,
            &["corral-1".into(), "10.0.2.15".into()],
            &["docker.example.com".into()],
        );
        let Response::Ok { body } = r else {
            panic!("{r:?}")
        };
        let made: Tls = serde_json::from_value(body).expect("answer");
        assert!(made.enabled);
        assert_eq!(
            made.names[3..],
            ["corral-1", "10.0.2.15", "docker.example.com"]
        );
        assert_eq!(made.client.len(), 3);
        let ca = std::fs::read_to_string(d.tls.join(tls::CA)).expect("ca");
        let client_ca =
            std::fs::read_to_string(tmp.path().join("home/.docker/ca.pem")).expect("copy");
        assert_eq!(ca, client_ca, "the client trusts the new CA");
        let again = generate(&effective("{}"), &d, &[], &[]);
        let Response::Ok { body } = again else {
            panic!("{again:?}")
        };
        let second: Tls = serde_json::from_value(body).expect("answer");
        assert!(!second.enabled, "TLS off: the answer says so");
        assert_ne!(
            std::fs::read_to_string(d.tls.join(tls::CA)).expect("ca"),
            ca,
            "a new CA each time"
        );
    }

    #[test]
    fn bad_names_and_supplied_certificates_are_the_users_to_fix_and_nothing_is_written() {
        let tmp = tempfile::tempdir().expect("tmp");
        let d = Dirs::under(tmp.path());
        let r = generate(&effective("{}"), &d, &[], &["bad name".into()]);
        assert_eq!(kind(&r), Some(ErrorKind::User), "{r:?}");
        let many = vec!["a.example".to_string(); MAX_NAMES + 1];
        assert_eq!(
            kind(&generate(&effective("{}"), &d, &[], &many)),
            Some(ErrorKind::User)
        );
        let supplied = "corral:\n  docker:\n    tls: true\n    ca_cert: \"-----BEGIN CERTIFICATE-----\\n\"\n    \
                        server_cert: \"-----BEGIN CERTIFICATE-----\\n\"\n    server_key: \"-----BEGIN PRIVATE KEY-----\\n\"\n";
        let r = generate(&effective(supplied), &d, &[], &[]);
        match &r {
            Response::Error { kind, message } => {
                assert_eq!(*kind, ErrorKind::User);
                assert!(message.contains("corral.docker.ca_cert"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let half = "corral:\n  docker:\n    server_cert: \"-----BEGIN CERTIFICATE-----\\n\"\n";
        let r = generate(&effective(half), &d, &[], &[]);
        assert_eq!(kind(&r), Some(ErrorKind::User), "{r:?}");
        assert!(!d.tls.exists(), "nothing written");
    }

    #[test]
    fn a_folder_that_cannot_be_written_is_the_machines_failure() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut d = Dirs::under(tmp.path());
        d.tls = tmp.path().join("a-file");
        std::fs::write(&d.tls, "").expect("w");
        let r = generate(&effective("{}"), &d, &[], &[]);
        assert_eq!(kind(&r), Some(ErrorKind::System), "{r:?}");
    }
}
