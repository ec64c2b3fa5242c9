//! HTTP(S) for the network sources: one client with a time limit, TLS through rustls
//! with the system's CA bundle, bodies capped at the user-data limit, 404 as "nothing
//! there", 5xx and 429 as worth another try. A URL the user typed may pin what it
//! serves with `#sha256=<hex>`; a plain `http://` one without a pin gets a warning
//! ([`transport_warning`]), except on link-local addresses (metadata services are http
//! by design).

use super::{fatal, retry};
use crate::error::Result;
use crate::userdata::MAX_USER_DATA;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use ureq::tls::{PemItem, RootCerts, TlsConfig};

/// The system's CA bundle (Debian's `ca-certificates`; the build puts it in the root and
/// in every image).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The roots every https request trusts: the system's bundle, read once.
fn system_roots() -> RootCerts {
    static ROOTS: OnceLock<RootCerts> = OnceLock::new();
    ROOTS
        .get_or_init(|| match roots_from(Path::new(CA_BUNDLE)) {
            Ok(roots) => roots,
            Err(e) => {
                // No bundle: Mozilla's roots built into the binary, never no checking.
                log::warn!("{e}; https uses the CA roots built into Corral instead");
                RootCerts::WebPki
            }
        })
        .clone()
}

/// The certificates of a PEM bundle at `path`.
pub fn roots_from(path: &Path) -> Result<RootCerts> {
    let what = format!("reading the CA bundle {}", path.display());
    let pem = std::fs::read(path).map_err(|e| fatal(&what, e))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(fatal(what, "no certificate in it"));
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

/// An HTTP client whose every request ends within `timeout`, statuses left to the caller.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    agent_trusting(timeout, system_roots())
}

/// [`agent`] with the given CA roots.
fn agent_trusting(timeout: Duration, roots: RootCerts) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into()
}

/// `url` without its fragment, and the sha256 its `#sha256=<hex>` fragment pins.
pub fn split_pin(url: &str) -> Result<(&str, Option<[u8; 32]>)> {
    let Some((base, fragment)) = url.split_once('#') else {
        return Ok((url, None));
    };
    let Some(hex_digest) = fragment.strip_prefix("sha256=") else {
        return Ok((base, None));
    };
    let mut pin = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut pin).map_err(|_| {
        fatal(
            format!("the pin in {url}"),
            "#sha256= takes the 64 hex digits of the file's SHA-256 (`sha256sum FILE`)",
        )
    })?;
    Ok((base, Some(pin)))
}

/// What to tell the user about fetching `url`: plain http from an address that is not
/// link-local, with no sha256 pin, can be read and changed by anyone on the path.
pub fn transport_warning(url: &str) -> Option<String> {
    let (base, pin) = split_pin(url).ok()?;
    let rest = base.strip_prefix("http://")?;
    if pin.is_some() {
        return None;
    }
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.split(':').next().unwrap_or(authority),
    };
    let link_local = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_link_local(),
        Ok(IpAddr::V6(a)) => (a.segments()[0] & 0xffc0) == 0xfe80,
        Err(_) => false,
    };
    (!link_local).then(|| {
        format!(
            "{base} is plain http: anyone on the network path can read it or change it \
             before Corral runs it; use https:// or pin it with #sha256=<sha256sum of the file>"
        )
    })
}

/// A body, capped; `Ok(None)` on 404.
pub(crate) fn body(
    what: &str,
    response: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Option<Vec<u8>>> {
    let mut response = response.map_err(|e| {
        if refused_by_tls(&e) {
            fatal(
                what,
                format!("{e}; check the address, or the CA bundle {CA_BUNDLE}"),
            )
        } else {
            retry(what, e)
        }
    })?;
    let status = response.status().as_u16();
    match status {
        200 => {
            let mut out = Vec::new();
            response
                .body_mut()
                .as_reader()
                .take(MAX_USER_DATA as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| retry(format!("{what}: reading the answer"), e))?;
            Ok(Some(out))
        }
        404 => Ok(None),
        s if s >= 500 || s == 429 => Err(retry(what, format!("HTTP {s}"))),
        s => Err(fatal(what, format!("HTTP {s}"))),
    }
}

/// A document at `url` (at most [`MAX_USER_DATA`] bytes; 404 is an error): user-data,
/// or a services file for `corral service enable URL`. `what` names it in errors.
/// A TLS refusal (an unknown issuer, a wrong name, a bad signature): another try would
/// get the same certificate.
fn refused_by_tls(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) | ureq::Error::Pem(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

/// An `https://` URL is checked against the system's CA bundle; a `#sha256=<hex>` fragment
/// pins the body, which must then match.
pub fn get(what: &str, url: &str, timeout: Duration) -> Result<Vec<u8>> {
    get_with(agent(timeout), what, url)
}

fn get_with(agent: ureq::Agent, what: &str, url: &str) -> Result<Vec<u8>> {
    let (base, pin) = split_pin(url)?;
    let what = format!("{what}: GET {base}");
    let data = body(&what, agent.get(base).call())?.ok_or_else(|| fatal(&what, "HTTP 404"))?;
    if let Some(pin) = pin {
        let got: [u8; 32] = Sha256::digest(&data).into();
        if got != pin {
            return Err(fatal(
                what,
                format!(
                    "its SHA-256 is {}, the URL pins {}: the file changed (or is not the one \
                     meant); nothing of it was used",
                    hex::encode(got),
                    hex::encode(pin)
                ),
            ));
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::io::Write;
    use std::net::TcpListener;

    /// A CA and a certificate for 127.0.0.1 it signed: (CA PEM, leaf DER, leaf key DER).
    fn ca_and_leaf() -> (String, Vec<u8>, Vec<u8>) {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("leaf params")
            .signed_by(&key, &issuer)
            .expect("leaf");
        (ca_pem, leaf.der().to_vec(), key.serialize_der())
    }

    /// An https server on 127.0.0.1 answering each connection with `body`.
    fn serve(cert: Vec<u8>, key: Vec<u8>, body: &'static [u8]) -> u16 {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.into()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let conn = rustls::ServerConnection::new(config.clone()).expect("conn");
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => request.push(byte[0]),
                        _ => break,
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes());
                let _ = tls.write_all(body);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        port
    }

    fn bundle(dir: &Path, pem: &str) -> RootCerts {
        let path = dir.join("ca.pem");
        std::fs::write(&path, pem).expect("write bundle");
        roots_from(&path).expect("bundle read")
    }

    #[test]
    fn https_is_checked_against_the_ca_bundle_and_a_pin_must_match() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (ca, cert, key) = ca_and_leaf();
        let port = serve(cert, key, b"#cloud-config\nhostname: tls\n");
        let url = format!("https://127.0.0.1:{port}/user-data");
        let trusting = || agent_trusting(Duration::from_secs(20), bundle(tmp.path(), &ca));
        assert_eq!(
            get_with(trusting(), "user-data", &url).expect("fetched over https"),
            b"#cloud-config\nhostname: tls\n"
        );
        // The right pin passes, a wrong one refuses the file and says both sums.
        let sum = hex::encode(Sha256::digest(b"#cloud-config\nhostname: tls\n"));
        get_with(trusting(), "user-data", &format!("{url}#sha256={sum}")).expect("pinned");
        let wrong = "0".repeat(64);
        let e = get_with(trusting(), "user-data", &format!("{url}#sha256={wrong}"))
            .expect_err("a wrong pin")
            .to_string();
        assert!(e.contains(&sum) && e.contains(&wrong), "{e}");
        // A server whose certificate no CA in the bundle signed is refused, and at once:
        // another try would not mend it.
        let (other_ca, _, _) = ca_and_leaf();
        let other = agent_trusting(Duration::from_secs(20), bundle(tmp.path(), &other_ca));
        let e = get_with(other, "user-data", &url).expect_err("an unknown issuer");
        assert!(
            matches!(e, crate::error::ConfigError::BadAnswer { .. }),
            "{e:?}"
        );
        // A bundle with no certificate in it is an error, not a client that trusts nothing.
        std::fs::write(tmp.path().join("empty.pem"), "nothing\n").expect("write");
        assert!(roots_from(&tmp.path().join("empty.pem")).is_err());
    }

    #[test]
    fn plain_http_warns_unless_pinned_or_link_local_and_a_bad_pin_is_an_error() {
        let warned = |u: &str| transport_warning(u).is_some();
        assert!(warned("http://example.com/cloud-config.yml"));
        assert!(warned("http://10.0.2.2:8080/x.yml"));
        assert!(!warned("https://example.com/x.yml"));
        assert!(!warned(&format!(
            "http://example.com/x.yml#sha256={}",
            "a".repeat(64)
        )));
        assert!(!warned("http://169.254.169.254/latest/user-data"));
        assert!(!warned("http://[fe80::1]:80/user-data"));
        assert!(warned("http://[2001:db8::1]:80/user-data"));
        assert!(split_pin("http://h/x#sha256=xyz").is_err());
        assert_eq!(
            split_pin("http://h/x#top").expect("no pin"),
            ("http://h/x", None)
        );
    }
}
