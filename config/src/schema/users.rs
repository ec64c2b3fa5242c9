//! cloud-init's `users:`: accounts made in the console at each start, beside `corral`.
//! `default` (cloud-init's default user) is `corral` itself.

use super::*;

checked_string!(
    /// An account or group name as Debian's `adduser` takes it.
    AccountName,
    |s| {
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        if first_ok
            && s.len() <= 32
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
        {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not an account name; use lower-case letters, digits, `_` and `-` (at most 32)".into(),
            })
        }
    }
);

checked_string!(
    /// A sudoers rule (`ALL=(ALL) NOPASSWD:ALL`): one line of what sudoers takes after the
    /// user name, so that nothing else can be added to the file.
    SudoRule,
    |s| {
        // A host list first (`ALL`, a host name), balanced parentheses, one line.
        let starts_with_host = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let mut depth = 0i32;
        let balanced = s.chars().all(|c| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            (0..=1).contains(&depth)
        }) && depth == 0;
        let ok = starts_with_host
            && balanced
            && s.contains('=')
            && s.len() <= 256
            && s.chars().all(|c| c.is_ascii_alphanumeric() || " _=():,!/*.+-@".contains(c));
        if ok {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a sudoers rule Corral takes; write it as `ALL=(ALL) NOPASSWD:ALL`".into(),
            })
        }
    }
);

/// One account of `users:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserSpec {
    pub name: AccountName,
    /// Supplementary groups: a list, or names separated by commas.
    #[serde(default, deserialize_with = "groups")]
    pub groups: Vec<AccountName>,
    /// sudoers rules: one, a list, or `false`/absent for none.
    #[serde(default, deserialize_with = "sudo_rules")]
    pub sudo: Vec<SudoRule>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub ssh_authorized_keys: Vec<String>,
    /// The login shell (`/bin/bash` when unset or absent from the console).
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub gecos: Option<Scalar>,
    /// A fixed uid; otherwise the owner of an existing `/home/<name>`, else the next free
    /// one from 1101.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Read for cloud-init's files: Corral's accounts have no password (keys only).
    #[serde(default)]
    pub lock_passwd: Option<bool>,
}

/// An entry of `users:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEntry {
    /// cloud-init's default user: `corral`.
    Default,
    Account(Box<UserSpec>),
    /// An entry Corral cannot make, and why: a warning, and the other entries are made
    /// (cloud-init accepts more than Corral does; the file is never refused for it).
    Invalid(String),
}

impl UserSpec {
    /// An account with only a name (cloud-init's `users: [bob]`).
    pub fn named(name: AccountName) -> UserSpec {
        UserSpec {
            name,
            groups: Vec::new(),
            sudo: Vec::new(),
            ssh_authorized_keys: Vec::new(),
            shell: None,
            gecos: None,
            uid: None,
            lock_passwd: None,
        }
    }
}

impl<'de> Deserialize<'de> for UserEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = yaml_serde::Value::deserialize(d)?;
        if value.as_str() == Some("default") {
            return Ok(UserEntry::Default);
        }
        let read = if value.is_string() {
            AccountName::deserialize(value).map(UserSpec::named)
        } else {
            UserSpec::deserialize(value)
        };
        Ok(match read {
            Ok(u) => UserEntry::Account(Box::new(u)),
            Err(e) => UserEntry::Invalid(e.to_string()),
        })
    }
}

impl CloudConfig {
    /// The accounts `users:` asks for besides `corral`.
    pub fn accounts(&self) -> impl Iterator<Item = &UserSpec> {
        self.users.iter().filter_map(|u| match u {
            UserEntry::Account(spec) => Some(spec.as_ref()),
            UserEntry::Default | UserEntry::Invalid(_) => None,
        })
    }
}

fn groups<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AccountName>, D::Error> {
    use serde::de::Error;
    match yaml_serde::Value::deserialize(d)? {
        yaml_serde::Value::Null => Ok(Vec::new()),
        yaml_serde::Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(|g| {
                AccountName::deserialize(yaml_serde::Value::String(g.to_string()))
                    .map_err(D::Error::custom)
            })
            .collect(),
        v @ yaml_serde::Value::Sequence(_) => {
            Vec::<AccountName>::deserialize(v).map_err(D::Error::custom)
        }
        _ => Err(D::Error::custom(
            "groups is a list of group names, or names separated by commas",
        )),
    }
}

fn sudo_rules<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SudoRule>, D::Error> {
    use serde::de::Error;
    match yaml_serde::Value::deserialize(d)? {
        yaml_serde::Value::Null | yaml_serde::Value::Bool(false) => Ok(Vec::new()),
        v @ yaml_serde::Value::String(_) => SudoRule::deserialize(v)
            .map(|r| vec![r])
            .map_err(D::Error::custom),
        v @ yaml_serde::Value::Sequence(_) => {
            Vec::<SudoRule>::deserialize(v).map_err(D::Error::custom)
        }
        _ => Err(D::Error::custom(
            "sudo is a rule (`ALL=(ALL) NOPASSWD:ALL`), a list of them, or false",
        )),
    }
}
