//! EC2's instance metadata service: IMDSv2 (a token from a PUT, then GETs carrying it),
//! IMDSv1 when the PUT is refused. Tried by default only where DMI says EC2; the base
//! URL comes from [`Env::imds`], so tests point it at a fake service on 127.0.0.1.

use super::http::{agent, body};
use super::{retry, Datasource, Env, Fetched, Metadata};
use crate::error::Result;
use std::path::Path;
use std::time::Duration;

/// `ec2`.
pub struct Ec2;

impl Datasource for Ec2 {
    fn name(&self) -> String {
        "ec2".into()
    }

    fn fetch(&self, env: &Env) -> Result<Option<Fetched>> {
        if !env.explicit && !on_ec2(&env.dmi) {
            return Ok(None);
        }
        fetch_from(&env.imds, env.request_timeout).map(Some)
    }
}

/// Whether DMI says this is an EC2 instance (Nitro: the vendor; Xen: the BIOS version
/// or a UUID starting with ec2).
pub fn on_ec2(dmi: &Path) -> bool {
    let read = |f: &str| {
        std::fs::read_to_string(dmi.join(f))
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    read("sys_vendor").contains("amazon")
        || read("bios_version").contains("amazon")
        || read("product_uuid").starts_with("ec2")
}

/// The header IMDSv2's token travels in, and the one asking for it.
const TOKEN_HEADER: &str = "X-aws-ec2-metadata-token";
const TTL_HEADER: &str = "X-aws-ec2-metadata-token-ttl-seconds";

/// EC2's metadata: IMDSv2 first; IMDSv1 when the token PUT is refused.
pub fn fetch_from(base: &str, timeout: Duration) -> Result<Fetched> {
    let agent = agent(timeout);
    let token_url = format!("{base}/latest/api/token");
    let put = agent.put(&token_url).header(TTL_HEADER, "300").send_empty();
    let token = match put {
        Ok(mut r) if r.status() == 200 => {
            let t = r
                .body_mut()
                .read_to_string()
                .map_err(|e| retry("ec2: reading the token", e))?;
            Some(t.trim().to_string())
        }
        // 403/404/405: IMDSv2 is off or absent; IMDSv1 it is.
        Ok(r) if matches!(r.status().as_u16(), 403..=405) => None,
        Ok(r) => {
            return Err(retry(
                format!("ec2: PUT {token_url}"),
                format!("HTTP {}", r.status()),
            ))
        }
        Err(e) => return Err(retry(format!("ec2: PUT {token_url}"), e)),
    };
    let get = |path: &str| -> Result<Option<Vec<u8>>> {
        let url = format!("{base}/latest/{path}");
        let mut req = agent.get(&url);
        if let Some(t) = &token {
            req = req.header(TOKEN_HEADER, t);
        }
        body(&format!("ec2: GET {url}"), req.call())
    };
    let text = |path: &str| -> Result<Option<String>> {
        Ok(get(path)?
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .filter(|s| !s.is_empty()))
    };
    let mut meta = Metadata {
        instance_id: text("meta-data/instance-id")?,
        hostname: text("meta-data/local-hostname")?,
        region: text("meta-data/placement/region")?,
        public_keys: Vec::new(),
    };
    if let Some(list) = text("meta-data/public-keys/")? {
        for line in list.lines() {
            let index = line.split('=').next().unwrap_or_default().trim();
            if index.parse::<u32>().is_err() {
                continue;
            }
            if let Some(key) = text(&format!("meta-data/public-keys/{index}/openssh-key"))? {
                meta.public_keys.push(key);
            }
        }
    }
    let user_data = get("user-data")?.unwrap_or_default();
    Ok(Fetched {
        source: if token.is_some() {
            "ec2"
        } else {
            "ec2 (IMDSv1)"
        }
        .to_string(),
        user_data,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasource::testing::{env, instance, NoMedia};
    use corral_harness::imds::{FakeImds, Instance};
    use std::sync::Arc;

    #[test]
    fn imdsv2_takes_a_token_first_and_sends_it_every_time() {
        let fake = FakeImds::start(instance()).expect("fake imds");
        let f = fetch_from(&fake.url(), Duration::from_secs(2)).expect("fetches");
        assert_eq!(f.source, "ec2");
        assert_eq!(f.user_data, b"#cloud-config\nhostname: from-ec2\n");
        assert_eq!(f.meta.instance_id.as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(f.meta.hostname.as_deref(), Some("ip-10-0-0-7.ec2.internal"));
        assert_eq!(f.meta.region.as_deref(), Some("eu-west-1"));
        assert_eq!(f.meta.public_keys, ["ssh-ed25519 AAAAKEY laptop"]);
        let requests = fake.requests();
        assert_eq!(requests[0], "PUT /latest/api/token token=no");
        assert!(
            requests[1..]
                .iter()
                .all(|r| r.starts_with("GET ") && r.ends_with("token=yes")),
            "{requests:?}"
        );
    }

    #[test]
    fn falls_back_to_imdsv1_when_the_token_is_refused() {
        let fake = FakeImds::start(Instance {
            v1_only: true,
            require_token: false,
            user_data: None,
            ..instance()
        })
        .expect("fake imds");
        let f = fetch_from(&fake.url(), Duration::from_secs(2)).expect("fetches");
        assert_eq!(f.source, "ec2 (IMDSv1)");
        assert!(f.user_data.is_empty(), "404 on user-data: none");
        assert_eq!(f.meta.public_keys.len(), 1);
        assert!(fake.requests()[1..].iter().all(|r| r.ends_with("token=no")));
    }

    #[test]
    fn off_ec2_it_is_skipped_unless_named_and_a_dead_service_is_retryable() {
        let mut e = env("http://127.0.0.1:9", Arc::new(NoMedia));
        e.explicit = false;
        assert!(Ec2.fetch(&e).expect("skipped").is_none());
        let dmi = tempfile::tempdir().expect("tempdir");
        std::fs::write(dmi.path().join("sys_vendor"), "Amazon EC2\n").expect("write");
        assert!(on_ec2(dmi.path()));
        e.dmi = dmi.path().to_path_buf();
        let err = Ec2.fetch(&e).expect_err("nothing listens on port 9");
        assert!(err.is_retryable(), "{err}");
    }
}
