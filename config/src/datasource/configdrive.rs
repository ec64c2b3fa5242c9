//! OpenStack's config drive: a volume labelled `config-2` (or a directory,
//! `configdrive:/path`) holding `openstack/latest/user_data` and `meta_data.json`.

use super::volume::{on_volume, read_optional};
use super::{fatal, Datasource, Env, Fetched, Metadata};
use crate::error::Result;
use std::path::Path;

/// `configdrive` or `configdrive:/path`.
pub struct ConfigDrive {
    pub dir: Option<String>,
}

/// The label the config drive carries.
pub const LABEL: &str = "config-2";

impl Datasource for ConfigDrive {
    fn name(&self) -> String {
        match &self.dir {
            Some(d) => format!("configdrive:{d}"),
            None => "configdrive".into(),
        }
    }

    fn fetch(&self, env: &Env) -> Result<Option<Fetched>> {
        on_volume(&self.name(), &self.dir, &[LABEL], env, read)
    }
}

/// The config drive's `openstack/latest/`: `user_data` and `meta_data.json`.
fn read(dir: &Path, source: String) -> Result<Fetched> {
    let base = dir.join("openstack/latest");
    let user_data = read_optional(&base.join("user_data"))?;
    let meta_bytes = read_optional(&base.join("meta_data.json"))?;
    let mut meta = Metadata::default();
    if !meta_bytes.is_empty() {
        let v: serde_json::Value = serde_json::from_slice(&meta_bytes)
            .map_err(|e| fatal(format!("{source}: meta_data.json is not JSON"), e))?;
        let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        meta.instance_id = text("uuid");
        meta.hostname = text("hostname").or_else(|| text("name"));
        meta.region = text("availability_zone");
        if let Some(keys) = v.get("public_keys").and_then(|k| k.as_object()) {
            meta.public_keys = keys
                .values()
                .filter_map(|k| k.as_str().map(|s| s.trim().to_string()))
                .collect();
        }
    }
    Ok(Fetched {
        source,
        user_data,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasource::testing::{env, fixture, DirMedia, NoMedia};
    use std::sync::Arc;

    #[test]
    fn reads_openstack_latest_from_a_labelled_volume_or_a_directory() {
        let media = DirMedia {
            label: LABEL,
            dir: fixture("configdrive/v1"),
        };
        let f = ConfigDrive { dir: None }
            .fetch(&env("", Arc::new(media)))
            .expect("ok")
            .expect("found");
        assert_eq!(f.source, "configdrive:/dev/sr1");
        assert_eq!(f.user_data, b"#cloud-config\n");
        assert_eq!(f.meta.instance_id.as_deref(), Some("u-1"));
        assert_eq!(f.meta.hostname.as_deref(), Some("os1"));
        assert_eq!(f.meta.public_keys, ["ssh-rsa AAAA os"]);
        let by_dir = ConfigDrive {
            dir: Some(fixture("configdrive/v1").display().to_string()),
        };
        let f2 = by_dir
            .fetch(&env("", Arc::new(NoMedia)))
            .expect("ok")
            .expect("found");
        assert_eq!(f2.meta, f.meta);
        let nocloud_only = DirMedia {
            label: "cidata",
            dir: fixture("nocloud/v1"),
        };
        assert!(ConfigDrive { dir: None }
            .fetch(&env("", Arc::new(nocloud_only)))
            .expect("ok")
            .is_none());
    }
}
