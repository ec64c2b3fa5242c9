//! The user engine's TLS files (RancherOS's `ros tls generate`): a CA, a server
//! certificate for dockerd and a client certificate for the `corral` user, made once and
//! kept in [`crate::TLS_DIR`] (on the state partition when there is one). Keys are
//! ECDSA P-256; the certificates do not expire in the machine's lifetime, since a VM's
//! clock is not to be trusted at first boot.

use crate::daemon::EngineError;
use corral_config::schema::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::os::unix::fs::{fchown, lchown, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("making the user engine's TLS certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0:?} is not a host name or IP address for the server certificate (such as docker.example.com or 192.0.2.10)")]
    Name(String),
}

/// The files, by name, in the TLS folder. dockerd reads the first three.
pub const CA: &str = "ca.pem";
pub const SERVER_CERT: &str = "server-cert.pem";
pub const SERVER_KEY: &str = "server-key.pem";
pub const CA_KEY: &str = "ca-key.pem";
/// The client's, as the docker CLI names them in `~/.docker`.
pub const CLIENT_CERT: &str = "cert.pem";
pub const CLIENT_KEY: &str = "key.pem";

/// Certificates given in the configuration (`ca_cert`, `ca_key`, `server_cert`,
/// `server_key`) instead of generated ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supplied {
    pub ca_cert: String,
    pub ca_key: Option<String>,
    pub server_cert: String,
    pub server_key: String,
}

impl Supplied {
    /// None when the configuration supplies none; an error naming what is missing or
    /// not PEM when it supplies some.
    pub fn from_engine(e: &Engine) -> Result<Option<Supplied>, EngineError> {
        let given = [
            ("ca_cert", &e.ca_cert),
            ("server_cert", &e.server_cert),
            ("server_key", &e.server_key),
            ("ca_key", &e.ca_key),
        ];
        if given.iter().all(|(_, v)| v.is_none()) {
            return Ok(None);
        }
        for (key, value) in given {
            match value {
                Some(pem) if !pem.contains("-----BEGIN ") => {
                    return Err(EngineError {
                        key: key.into(),
                        problem: "is not PEM text (-----BEGIN ...); paste the file's contents"
                            .into(),
                    })
                }
                None if key != "ca_key" => {
                    return Err(EngineError {
                        key: key.into(),
                        problem: "missing: supplied TLS files need ca_cert, server_cert and server_key together".into(),
                    })
                }
                _ => {}
            }
        }
        Ok(Some(Supplied {
            ca_cert: e.ca_cert.clone().unwrap_or_default(),
            ca_key: e.ca_key.clone(),
            server_cert: e.server_cert.clone().unwrap_or_default(),
            server_key: e.server_key.clone().unwrap_or_default(),
        }))
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// Everything was there already.
    Kept,
    /// A new CA, server and client certificate.
    Generated,
    /// The configuration's files were written.
    Supplied,
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    let io = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(path, text).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)
}

/// Makes the TLS folder, root's alone.
fn make_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    Ok(())
}

/// Makes sure `dir` holds the engine's TLS files: the configuration's when it supplies
/// them, else the ones made before, else new ones for the server `names` (host names
/// and IP addresses; `localhost`, 127.0.0.1 and ::1 are always added).
pub fn ensure(dir: &Path, names: &[String], supplied: Option<&Supplied>) -> Result<Made, TlsError> {
    make_dir(dir)?;
    if let Some(s) = supplied {
        write(&dir.join(CA), &s.ca_cert, 0o644)?;
        write(&dir.join(SERVER_CERT), &s.server_cert, 0o644)?;
        write(&dir.join(SERVER_KEY), &s.server_key, 0o600)?;
        if let Some(k) = &s.ca_key {
            write(&dir.join(CA_KEY), k, 0o600)?;
        }
        return Ok(Made::Supplied);
    }
    let all = [CA, CA_KEY, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY];
    if all.iter().all(|f| dir.join(f).is_file()) {
        return Ok(Made::Kept);
    }
    write_set(dir, &generate(names)?)?;
    Ok(Made::Generated)
}

/// Replaces whatever `dir` holds with a new CA and the server and client certificates
/// it signs (`corral tls generate`): clients holding the old files are refused from the
/// engine's next start. Every file is made before one is written. Returns the server
/// certificate's names.
pub fn renew(dir: &Path, names: &[String]) -> Result<Vec<String>, TlsError> {
    make_dir(dir)?;
    write_set(dir, &generate(names)?)?;
    Ok(server_names(names))
}

/// Writes the whole set beside the old one first (`.NAME.new`, keys readable by root
/// only) and renames it over the old only once every file is written: a full disk
/// leaves the old set whole (a server certificate with another set's key would keep
/// dockerd from starting), and the temporary files are removed.
fn write_set(dir: &Path, files: &[(&str, String)]) -> Result<(), TlsError> {
    let staged: Vec<(PathBuf, PathBuf)> = files
        .iter()
        .map(|(name, _)| (dir.join(format!(".{name}.new")), dir.join(name)))
        .collect();
    let written = files
        .iter()
        .zip(&staged)
        .try_for_each(|((name, text), (new, _))| {
            let mode = if name.ends_with("key.pem") {
                0o600
            } else {
                0o644
            };
            write(new, text, mode)?;
            std::fs::File::open(new)
                .and_then(|f| f.sync_all())
                .map_err(|source| TlsError::Write {
                    path: new.clone(),
                    source,
                })
        });
    if let Err(e) = written {
        for (new, _) in &staged {
            let _ = std::fs::remove_file(new);
        }
        return Err(e);
    }
    for (new, path) in &staged {
        std::fs::rename(new, path).map_err(|source| TlsError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// A name the server certificate can carry: an IP address, or a DNS name (labels of
/// letters, digits and `-`, a leading `*.` allowed), at most 253 characters.
pub fn check_name(name: &str) -> Result<(), TlsError> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.len() <= 253 && host.split('.').all(label) {
        Ok(())
    } else {
        Err(TlsError::Name(name.to_string()))
    }
}

/// The server certificate's names: `localhost`, 127.0.0.1 and ::1, then `names` in
/// order, each once.
pub fn server_names(names: &[String]) -> Vec<String> {
    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for n in names {
        if !n.is_empty() && !sans.contains(n) {
            sans.push(n.clone());
        }
    }
    sans
}

/// A new CA and the server and client certificates it signs, as (file name, PEM).
pub fn generate(names: &[String]) -> Result<Vec<(&'static str, String)>, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Corral user engine CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let issuer = Issuer::new(ca, ca_key);

    let sans = server_names(names);
    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(sans)?;
    server.distinguished_name.push(
        DnType::CommonName,
        names.first().map(String::as_str).unwrap_or("localhost"),
    );
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client.distinguished_name.push(DnType::CommonName, "corral");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let client_cert = client.signed_by(&client_key, &issuer)?;

    Ok(vec![
        (CA, ca_pem),
        (CA_KEY, issuer.key().serialize_pem()),
        (SERVER_CERT, server_cert.pem()),
        (SERVER_KEY, server_key.serialize_pem()),
        (CLIENT_CERT, client_cert.pem()),
        (CLIENT_KEY, client_key.serialize_pem()),
    ])
}

/// Copies the client's files (`ca.pem`, `cert.pem`, `key.pem`, those that exist) into
/// `docker_dir` (the user's `~/.docker`), owned by `uid`:`gid`, the key readable by them
/// only. The folder belongs to the user, so nothing in it is followed: a symbolic link
/// as the folder is refused, and each file is made new (never opened through a link)
/// and renamed into place. Returns the files copied.
pub fn install_client(
    dir: &Path,
    docker_dir: &Path,
    uid: u32,
    gid: u32,
) -> Result<Vec<PathBuf>, TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TlsError::Write { path, source }
    };
    if std::fs::symlink_metadata(docker_dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io(docker_dir)(std::io::Error::other(
            "a symbolic link; remove it and try again",
        )));
    }
    std::fs::create_dir_all(docker_dir).map_err(io(docker_dir))?;
    lchown(docker_dir, Some(uid), Some(gid)).map_err(io(docker_dir))?;
    std::fs::set_permissions(docker_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(docker_dir))?;
    let mut copied = Vec::new();
    for name in [CA, CLIENT_CERT, CLIENT_KEY] {
        let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
            continue;
        };
        let dest = docker_dir.join(name);
        let new = docker_dir.join(format!(".{name}.corral-new"));
        let _ = std::fs::remove_file(&new);
        let mode = if name == CLIENT_KEY { 0o600 } else { 0o644 };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&new)
            .map_err(io(&new))?;
        file.write_all(text.as_bytes()).map_err(io(&new))?;
        fchown(&file, Some(uid), Some(gid)).map_err(io(&new))?;
        std::fs::rename(&new, &dest).map_err(io(&dest))?;
        copied.push(dest);
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn files_are_made_once_with_private_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = dir.path().join("tls");
        let made = ensure(&tls, &["corral-1".into(), "10.0.2.15".into()], None).expect("made");
        assert_eq!(made, Made::Generated);
        for (f, mode) in [
            (CA, 0o644),
            (CA_KEY, 0o600),
            (SERVER_KEY, 0o600),
            (CLIENT_KEY, 0o600),
        ] {
            let m = std::fs::metadata(tls.join(f)).expect(f).mode() & 0o777;
            assert_eq!(m, mode, "{f}");
        }
        let first = std::fs::read_to_string(tls.join(SERVER_CERT)).expect("cert");
        assert!(first.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(ensure(&tls, &[], None).expect("kept"), Made::Kept);
        assert_eq!(
            std::fs::read_to_string(tls.join(SERVER_CERT)).expect("cert"),
            first,
            "made once, not again at each boot"
        );
    }

    #[test]
    fn the_client_gets_its_files_and_only_it_reads_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = dir.path().join("tls");
        ensure(&tls, &[], None).expect("made");
        let home = dir.path().join("home/.docker");
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let copied = install_client(&tls, &home, uid, gid).expect("copied");
        assert_eq!(copied.len(), 3);
        let key = std::fs::metadata(home.join(CLIENT_KEY)).expect("key");
        assert_eq!(key.mode() & 0o777, 0o600);
        assert_eq!(key.uid(), uid);
        // A link left in the user's folder is replaced, not written through.
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").expect("target");
        std::fs::remove_file(home.join(CLIENT_CERT)).expect("rm");
        std::os::unix::fs::symlink(&target, home.join(CLIENT_CERT)).expect("link");
        install_client(&tls, &home, uid, gid).expect("copied again");
        assert_eq!(std::fs::read_to_string(&target).expect("target"), "keep");
        assert!(!std::fs::symlink_metadata(home.join(CLIENT_CERT))
            .expect("cert")
            .file_type()
            .is_symlink());
        // A link as the folder itself is refused.
        let linked = dir.path().join("linked-home");
        std::os::unix::fs::symlink(dir.path().join("elsewhere-dir"), &linked).expect("link");
        let e = install_client(&tls, &linked, uid, gid).expect_err("a link");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!dir.path().join("elsewhere-dir").exists());
    }

    #[test]
    fn renewing_replaces_every_file_with_a_new_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = dir.path().join("tls");
        ensure(&tls, &[], None).expect("made");
        let read = |f: &str| std::fs::read_to_string(tls.join(f)).expect(f);
        let before: Vec<String> = [CA, CA_KEY, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY]
            .iter()
            .map(|f| read(f))
            .collect();
        let names = renew(&tls, &["engine.example".into(), "localhost".into()]).expect("renewed");
        assert_eq!(
            names,
            ["localhost", "127.0.0.1", "::1", "engine.example"],
            "the usual names first, each once"
        );
        for (f, old) in [CA, CA_KEY, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY]
            .iter()
            .zip(&before)
        {
            assert_ne!(&read(f), old, "{f} replaced");
        }
        let m = std::fs::metadata(tls.join(CA_KEY)).expect("ca key").mode() & 0o777;
        assert_eq!(m, 0o600);
        let left: Vec<String> = std::fs::read_dir(&tls)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".new"))
            .collect();
        assert!(left.is_empty(), "no temporary files left: {left:?}");
        assert_eq!(ensure(&tls, &[], None).expect("kept"), Made::Kept);
    }

    #[test]
    fn a_renewal_that_cannot_write_every_file_leaves_the_old_set_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = dir.path().join("tls");
        ensure(&tls, &[], None).expect("made");
        let all = [CA, CA_KEY, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY];
        let read = |f: &str| std::fs::read_to_string(tls.join(f)).expect(f);
        let before: Vec<String> = all.iter().map(|f| read(f)).collect();
        // The last file cannot be staged: a folder is in its way.
        let blocker = tls.join(format!(".{CLIENT_KEY}.new"));
        std::fs::create_dir(&blocker).expect("blocker");
        renew(&tls, &[]).expect_err("cannot write the last file");
        let after: Vec<String> = all.iter().map(|f| read(f)).collect();
        assert_eq!(after, before, "not one file replaced");
        for f in &all[..5] {
            assert!(
                !tls.join(format!(".{f}.new")).exists(),
                "{f}'s temporary file removed"
            );
        }
    }

    #[test]
    fn server_names_are_host_names_or_addresses() {
        for good in [
            "docker.example.com",
            "corral-1",
            "*.example.com",
            "192.0.2.10",
            "fd00::1",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a..b",
            "-lead.example",
            "under_score",
            "sp ace",
            "a/b",
            "*",
        ] {
            let e = check_name(bad).expect_err(bad);
            assert!(e.to_string().contains("not a host name"), "{e}");
        }
        assert!(
            check_name(&"a".repeat(64)).is_err(),
            "a label is at most 63"
        );
        let long = vec!["a".repeat(60); 5].join(".");
        assert!(check_name(&long).is_err(), "a name is at most 253");
    }

    #[test]
    fn supplied_files_must_come_together_and_be_pem() {
        let mut e = Engine {
            server_cert: Some("-----BEGIN CERTIFICATE-----\n".into()),
            ..Default::default()
        };
        let err = Supplied::from_engine(&e).expect_err("incomplete");
        assert_eq!(err.key, "ca_cert");
        e.ca_cert = Some("not pem".into());
        e.server_key = Some("-----BEGIN PRIVATE KEY-----\n".into());
        let err = Supplied::from_engine(&e).expect_err("not pem");
        assert!(err.to_string().contains("not PEM"), "{err}");
        e.ca_cert = Some("-----BEGIN CERTIFICATE-----\n".into());
        let s = Supplied::from_engine(&e).expect("ok").expect("some");
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            ensure(dir.path(), &[], Some(&s)).expect("written"),
            Made::Supplied
        );
        assert!(dir.path().join(SERVER_KEY).is_file());
        assert_eq!(
            Supplied::from_engine(&Engine::default()).expect("none"),
            None
        );
    }
}
