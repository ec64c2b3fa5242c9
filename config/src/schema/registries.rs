//! `corral.registry_auths`: credentials for image registries (RancherOS's
//! `rancher.registry_auths`), by registry address.

use super::*;

/// One registry's credentials: docker's `auth` (base64 of `user:password`), or a user
/// name and password, or an identity token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RegistryAuth {
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub username: Option<Scalar>,
    #[serde(default)]
    pub password: Option<Scalar>,
    #[serde(default)]
    pub identitytoken: Option<String>,
    /// Read for RancherOS's files; docker no longer uses it.
    #[serde(default)]
    pub email: Option<String>,
}

impl RegistryAuth {
    /// The entry of docker's client configuration (`auths.<registry>`): `auth`, made
    /// from the user name and password when it is not given, and `identitytoken`.
    /// `None` when it holds no credential.
    pub fn docker_entry(&self) -> Option<serde_json::Value> {
        let auth = self.auth.clone().or_else(|| {
            let user = self.username.as_ref()?;
            let password = self.password.as_ref().map_or("", |p| p.0.as_str());
            Some(base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", user.0)))
        });
        let mut entry = serde_json::Map::new();
        if let Some(a) = auth {
            entry.insert("auth".into(), a.into());
        }
        if let Some(t) = &self.identitytoken {
            entry.insert("identitytoken".into(), t.clone().into());
        }
        (!entry.is_empty()).then_some(serde_json::Value::Object(entry))
    }
}
