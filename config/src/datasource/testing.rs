//! What the datasources' tests share: fake media, an [`Env`] pointed at fakes, the
//! fixture trees in `config/tests/fixtures/` and a fake EC2 instance.

use super::{Env, Media};
use corral_harness::imds::Instance;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// No volumes at all.
pub struct NoMedia;

impl Media for NoMedia {
    fn find(&self, _: &[&str]) -> Vec<PathBuf> {
        Vec::new()
    }
    fn mount(&self, _: &Path) -> std::io::Result<PathBuf> {
        Err(std::io::Error::other("no media"))
    }
    fn unmount(&self, _: &Path) {}
}

/// One "device", `/dev/sr1`, carrying `label`, whose "mount" is a prepared directory.
pub struct DirMedia {
    pub label: &'static str,
    pub dir: PathBuf,
}

impl Media for DirMedia {
    fn find(&self, labels: &[&str]) -> Vec<PathBuf> {
        if labels.contains(&self.label) {
            vec![PathBuf::from("/dev/sr1")]
        } else {
            Vec::new()
        }
    }
    fn mount(&self, _: &Path) -> std::io::Result<PathBuf> {
        Ok(self.dir.clone())
    }
    fn unmount(&self, _: &Path) {}
}

/// A fixture tree: `config/tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An environment with the metadata service at `imds`, the given media, no DMI and
/// no command-line URL; the datasource list counts as configured.
pub fn env(imds: &str, media: Arc<dyn Media>) -> Env {
    Env {
        media,
        imds: imds.into(),
        dmi: PathBuf::from("/nonexistent"),
        cmdline_url: None,
        explicit: true,
        request_timeout: Duration::from_secs(2),
    }
}

/// An EC2 instance with a key and user-data, IMDSv2 required.
pub fn instance() -> Instance {
    Instance {
        instance_id: "i-0123456789abcdef0".into(),
        local_hostname: "ip-10-0-0-7.ec2.internal".into(),
        region: "eu-west-1".into(),
        public_keys: vec![("laptop".into(), "ssh-ed25519 AAAAKEY laptop".into())],
        user_data: Some(b"#cloud-config\nhostname: from-ec2\n".to_vec()),
        require_token: true,
        v1_only: false,
    }
}
