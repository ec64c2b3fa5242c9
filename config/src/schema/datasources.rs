//! `corral.cloud_init`: which datasources are tried, in order.

use super::*;

/// `corral.cloud_init`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CloudInit {
    /// Where user-data comes from, tried in parallel (default: cmdline, nocloud,
    /// configdrive, ec2).
    #[serde(default)]
    pub datasources: Option<Vec<DatasourceName>>,
}

/// A datasource, as written in `corral.cloud_init.datasources`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DatasourceName {
    /// `corral.cloud_config_url=` on the kernel command line.
    Cmdline,
    /// A volume labelled `cidata` (or the path of a directory holding its files).
    NoCloud(Option<String>),
    /// A volume labelled `config-2` (or a directory).
    ConfigDrive(Option<String>),
    /// EC2's instance metadata service.
    Ec2,
    Url(String),
    File(String),
}

impl std::fmt::Display for DatasourceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatasourceName::Cmdline => f.write_str("cmdline"),
            DatasourceName::NoCloud(None) => f.write_str("nocloud"),
            DatasourceName::NoCloud(Some(p)) => write!(f, "nocloud:{p}"),
            DatasourceName::ConfigDrive(None) => f.write_str("configdrive"),
            DatasourceName::ConfigDrive(Some(p)) => write!(f, "configdrive:{p}"),
            DatasourceName::Ec2 => f.write_str("ec2"),
            DatasourceName::Url(u) => write!(f, "url:{u}"),
            DatasourceName::File(p) => write!(f, "file:{p}"),
        }
    }
}

impl std::str::FromStr for DatasourceName {
    type Err = crate::ConfigError;

    fn from_str(s: &str) -> Result<Self, crate::ConfigError> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a.to_string()).filter(|a| !a.is_empty())),
            None => (s, None),
        };
        let path = |a: Option<String>| -> Result<Option<String>, crate::ConfigError> {
            match a {
                Some(p) if !p.starts_with('/') => Err(crate::ConfigError::Invalid {
                    value: s.to_string(),
                    problem: format!("names {p:?}, which is not an absolute path"),
                }),
                other => Ok(other),
            }
        };
        Ok(match (kind, arg) {
            ("cmdline", None) => DatasourceName::Cmdline,
            ("nocloud", a) => DatasourceName::NoCloud(path(a)?),
            ("configdrive", a) => DatasourceName::ConfigDrive(path(a)?),
            ("ec2", None) => DatasourceName::Ec2,
            ("url", Some(u)) if u.starts_with("http://") || u.starts_with("https://") => {
                DatasourceName::Url(u)
            }
            ("file", Some(p)) if p.starts_with('/') => DatasourceName::File(p),
            _ => {
                return Err(crate::ConfigError::Invalid {
                    value: s.to_string(),
                    problem:
                        "is not a datasource Corral knows; use cmdline, nocloud, configdrive, \
                              ec2, url:http://... or file:/path"
                            .into(),
                })
            }
        })
    }
}

impl<'de> Deserialize<'de> for DatasourceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(|s| s.parse::<DatasourceName>().map(|_| ())))?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The datasources tried when none are configured.
pub fn default_datasources() -> Vec<DatasourceName> {
    vec![
        DatasourceName::Cmdline,
        DatasourceName::NoCloud(None),
        DatasourceName::ConfigDrive(None),
        DatasourceName::Ec2,
    ]
}
