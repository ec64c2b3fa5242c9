//! Commands (`bootcmd`, `runcmd`) and which consoles log in by themselves.

use super::*;

/// Which consoles log in by themselves: `corral.autologin` (all of them) or
/// `corral.autologin=ttyS0` / `[tty1, ttyS0]` (RancherOS's `rancher.autologin=ttyS0`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Autologin {
    #[default]
    Off,
    All,
    Ttys(Vec<String>),
}

impl Autologin {
    /// Whether the console on `tty` logs in by itself.
    pub fn covers(&self, tty: &str) -> bool {
        match self {
            Autologin::Off => false,
            Autologin::All => true,
            Autologin::Ttys(ttys) => ttys.iter().any(|t| t == tty),
        }
    }
}

impl<'de> Deserialize<'de> for Autologin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            One(String),
            Many(Vec<String>),
        }
        let raw = Option::<Raw>::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected true, false, a tty name or a list of them")
        })?;
        Ok(match raw {
            None | Some(Raw::Flag(false)) => Autologin::Off,
            Some(Raw::Flag(true)) => Autologin::All,
            Some(Raw::One(s)) => Autologin::Ttys(
                s.split(',')
                    .map(|t| t.trim().trim_start_matches("/dev/").to_string())
                    .filter(|t| !t.is_empty())
                    .collect(),
            ),
            Some(Raw::Many(v)) => Autologin::Ttys(
                v.into_iter()
                    .map(|t| t.trim_start_matches("/dev/").to_string())
                    .collect(),
            ),
        })
    }
}

/// A command: a line for `sh -c`, or an argument list run as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Shell(String),
    Argv(Vec<String>),
}

impl Command {
    /// The program and its arguments.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Shell(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
            Command::Argv(v) => v.clone(),
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Shell(line) => f.write_str(line),
            Command::Argv(v) => write!(f, "{}", v.join(" ")),
        }
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Line(Scalar),
            Argv(Vec<Scalar>),
        }
        let bad = || {
            serde::de::Error::custom(
                "a command is a line of shell (`echo hi`) or a list of arguments (`[echo, hi]`)",
            )
        };
        match Raw::deserialize(d).map_err(|_| bad())? {
            Raw::Line(s) if !s.0.trim().is_empty() => Ok(Command::Shell(s.0)),
            Raw::Argv(v) if !v.is_empty() => {
                Ok(Command::Argv(v.into_iter().map(|s| s.0).collect()))
            }
            _ => Err(bad()),
        }
    }
}

/// A list of commands where an empty item (`- []`, `- ""`) is skipped, as RancherOS
/// skipped it; any other item must be a command.
pub(crate) fn commands<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Command>, D::Error> {
    struct Item(Option<Command>);
    impl<'de> Deserialize<'de> for Item {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let value = yaml_serde::Value::deserialize(d)?;
            let empty = match &value {
                yaml_serde::Value::Null => true,
                yaml_serde::Value::Sequence(s) => s.is_empty(),
                yaml_serde::Value::String(s) => s.trim().is_empty(),
                _ => false,
            };
            if empty {
                return Ok(Item(None));
            }
            Command::deserialize(value)
                .map(|c| Item(Some(c)))
                .map_err(serde::de::Error::custom)
        }
    }
    let items = Option::<Vec<Item>>::deserialize(d)?.unwrap_or_default();
    Ok(items.into_iter().filter_map(|i| i.0).collect())
}
