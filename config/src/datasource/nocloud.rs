//! NoCloud: a volume labelled `cidata` (or a directory, `nocloud:/path`) holding
//! `user-data` and `meta-data`, as cloud-localds makes it.

use super::volume::{on_volume, read_optional};
use super::{fatal, Datasource, Env, Fetched, Metadata};
use crate::error::Result;
use std::path::Path;

/// `nocloud` or `nocloud:/path`.
pub struct NoCloud {
    pub dir: Option<String>,
}

/// The label NoCloud's volume carries.
pub const LABEL: &str = "cidata";

impl Datasource for NoCloud {
    fn name(&self) -> String {
        match &self.dir {
            Some(d) => format!("nocloud:{d}"),
            None => "nocloud".into(),
        }
    }

    fn fetch(&self, env: &Env) -> Result<Option<Fetched>> {
        on_volume(&self.name(), &self.dir, &[LABEL], env, read)
    }
}

/// NoCloud's `user-data` and `meta-data` in `dir`.
fn read(dir: &Path, source: String) -> Result<Fetched> {
    let user_data = read_optional(&dir.join("user-data"))?;
    let meta_text = read_optional(&dir.join("meta-data"))?;
    let meta = meta_data(&source, &meta_text)?;
    Ok(Fetched {
        source,
        user_data,
        meta,
    })
}

/// NoCloud's `meta-data`: YAML (or JSON) with `instance-id`, `local-hostname` and
/// optionally `public-keys`. Empty: no metadata. From `source`, for messages.
pub fn meta_data(source: &str, meta_text: &[u8]) -> Result<Metadata> {
    let mut meta = Metadata::default();
    if !meta_text.iter().all(u8::is_ascii_whitespace) {
        corral_yaml::bounded(&String::from_utf8_lossy(meta_text))
            .map_err(|e| fatal(format!("{source}: meta-data"), e))?;
        let v: yaml_serde::Value = yaml_serde::from_slice(meta_text)
            .map_err(|e| fatal(format!("{source}: meta-data is not YAML"), e))?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        meta.instance_id = text("instance-id");
        meta.hostname = text("local-hostname").or_else(|| text("hostname"));
        meta.public_keys = match v.get("public-keys") {
            Some(yaml_serde::Value::String(k)) => vec![k.clone()],
            Some(yaml_serde::Value::Sequence(ks)) => ks
                .iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasource::testing::{env, fixture, DirMedia, NoMedia};
    use crate::error::ConfigError;
    use std::sync::Arc;

    #[test]
    fn reads_a_labelled_volume_with_its_meta_data() {
        let media = DirMedia {
            label: LABEL,
            dir: fixture("nocloud/v1"),
        };
        let f = NoCloud { dir: None }
            .fetch(&env("", Arc::new(media)))
            .expect("ok")
            .expect("found");
        assert_eq!(f.source, "nocloud:/dev/sr1");
        assert_eq!(f.user_data, b"#cloud-config\nhostname: nc\n");
        assert_eq!(f.meta.hostname.as_deref(), Some("cloudy"));
        assert_eq!(f.meta.instance_id.as_deref(), Some("iid-local01"));
        assert_eq!(f.meta.public_keys, ["ssh-ed25519 AAAA nc"]);
    }

    #[test]
    fn reads_a_directory_and_is_absent_without_a_volume() {
        let dir = fixture("nocloud/v1").display().to_string();
        let f = NoCloud {
            dir: Some(dir.clone()),
        }
        .fetch(&env("", Arc::new(NoMedia)))
        .expect("ok")
        .expect("found");
        assert_eq!(f.source, format!("nocloud:{dir}"));
        assert_eq!(f.user_data, b"#cloud-config\nhostname: nc\n");
        let none = NoCloud { dir: None }.fetch(&env("", Arc::new(NoMedia)));
        assert!(none.expect("ok").is_none(), "no cidata volume: not there");
    }

    #[test]
    fn meta_data_that_is_not_yaml_is_a_bad_answer_not_retried() {
        let dir = fixture("nocloud/bad-meta").display().to_string();
        let err = NoCloud { dir: Some(dir) }
            .fetch(&env("", Arc::new(NoMedia)))
            .expect_err("bad meta-data");
        assert!(
            matches!(&err, ConfigError::BadAnswer { what, .. } if what.ends_with("meta-data is not YAML")),
            "{err}"
        );
        assert!(!err.is_retryable());
    }
}
