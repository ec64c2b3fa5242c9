//! Services: `corral.services` definitions and `corral.environment`.

use super::*;

/// A service under `corral.services`: a docker-compose service, kept as YAML for the
/// manager, which reads it like any services file. It must be a mapping with an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec(pub yaml_serde::Value);

impl<'de> Deserialize<'de> for ServiceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = yaml_serde::Value::deserialize(d)?;
        match v.get("image") {
            Some(yaml_serde::Value::String(_)) if v.is_mapping() => Ok(ServiceSpec(v)),
            _ => Err(serde::de::Error::custom(
                "a service is a docker-compose service with an image, like {image: nginx, restart: always}",
            )),
        }
    }
}

/// Environment as compose writes it: `[K=V, ...]` or `{K: V}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for EnvList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<String>),
            Map(BTreeMap<String, Option<Scalar>>),
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("environment is a list of KEY=VALUE or a mapping KEY: VALUE")
        })?;
        Ok(EnvList(match raw {
            Raw::List(v) => v
                .into_iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv, String::new()),
                })
                .collect(),
            Raw::Map(m) => m
                .into_iter()
                .map(|(k, v)| (k, v.map(|s| s.0).unwrap_or_default()))
                .collect(),
        }))
    }
}

/// One of RancherOS's service repositories (`corral.repositories.NAME.url`): an http(s)
/// folder with an `index.yml` and its services' files ([`crate::repository`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Repository {
    #[serde(default)]
    pub url: Option<Scalar>,
}

impl Repository {
    /// The folder's URL without a trailing `/`, when it is an http(s) URL; otherwise
    /// why not (a warning: RancherOS took any text and failed when it fetched).
    pub fn base(&self) -> Result<Option<&str>, String> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let url = url.0.trim();
        let http = url.starts_with("http://") || url.starts_with("https://");
        if http && !url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Ok(Some(url.trim_end_matches('/')))
        } else {
            Err(format!(
                "{url:?} is not a repository's URL; write https://host/path (the folder with index.yml)"
            ))
        }
    }
}
