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
