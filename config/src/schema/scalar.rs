//! Checked scalars: strings checked while the parser still knows the key's path, line
//! and column (`checked_string!`), lists given as commas, `null` read as the default.

use super::*;

/// A list, or one string of comma-separated items (`corral.modules=a,b`).
pub(crate) fn list_or_commas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ModuleName>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<ModuleName>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of module names, or names separated by commas")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(m) = seq.next_element::<ModuleName>()? {
                out.push(m);
            }
            Ok(out)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let check = ScalarVisitor(check_module);
            v.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| check.accept(p.to_string()).map(ModuleName))
                .collect()
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(V)
}

/// `null` (a key with nothing after it) reads as the type's default.
pub(crate) fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A string checked when it is read: `$name(String)` built by `$check`.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name(d.deserialize_any(ScalarVisitor($check))?))
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Reads a scalar as text and checks it while the parser still knows where it is, so
/// the error carries the key's path, line and column.
pub(crate) struct ScalarVisitor(pub(crate) fn(&str) -> Result<(), crate::ConfigError>);

impl ScalarVisitor {
    fn accept<E: serde::de::Error>(&self, s: String) -> Result<String, E> {
        (self.0)(&s).map_err(E::custom)?;
        Ok(s)
    }
}

impl serde::de::Visitor<'_> for ScalarVisitor {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value (text, a number or true/false), not a list or a mapping")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        self.accept(v.to_string())
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
        self.accept(v.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        self.accept(v.to_string())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        self.accept(v.to_string())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
        self.accept(v.to_string())
    }
}

/// A YAML scalar read as text: strings, numbers and booleans (`1`, `true`, `"x"`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Scalar(d.deserialize_any(ScalarVisitor(|_| Ok(())))?))
    }
}

checked_string!(
    /// A host name, checked as PID 1 checks `corral.hostname`
    /// (`corral_host::cmdline::check_hostname`).
    Hostname,
    |s| Ok(corral_host::cmdline::check_hostname(s)?)
);

checked_string!(
    /// A kernel module name (`br_netfilter`), optionally with parameters after a space,
    /// checked as PID 1 checks `corral.modules` (`corral_host::cmdline::check_module`).
    ModuleName,
    check_module
);

/// A module entry, checked as PID 1 checks `corral.modules`.
pub(crate) fn check_module(s: &str) -> Result<(), crate::ConfigError> {
    Ok(corral_host::cmdline::check_module(s)?)
}

checked_string!(
    /// A sysctl key, dotted (`net.ipv4.ip_forward`) or as a path under /proc/sys.
    SysctlKey,
    |s| {
        let ok = !s.is_empty()
            && s.split(['.', '/']).all(|p| {
                !p.is_empty()
                    && p != ".."
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || "_-:".contains(c))
            });
        if ok {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a sysctl key; write it as sysctl does, like net.ipv4.ip_forward".into(),
            })
        }
    }
);

checked_string!(
    /// An environment variable's name.
    EnvName,
    |s| {
        let mut chars = s.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not an environment variable name; use letters, digits and _, like HTTP_PROXY".into(),
            })
        }
    }
);

checked_string!(
    /// A service's name, as docker takes container names.
    ServiceName,
    |s| {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a service name; use letters, digits, `_`, `.` and `-`".into(),
            })
        }
    }
);

/// The consoles Corral ships: the default one (also `corral`) and the Debian console
/// (dist/console-debian.tar, loaded on the machine when asked: docs/consoles.md).
pub const CONSOLES: &[&str] = &["default", "corral", "debian"];

/// The names of the default console.
pub const DEFAULT_CONSOLE: &[&str] = &["default", "corral"];

/// Whether a `corral.console` value is an image reference (`myorg/console:1`, a user's
/// own console) rather than a console's name.
pub fn console_is_image(value: &str) -> bool {
    value.contains('/') || value.contains(':')
}

checked_string!(
    /// The console: `default`, a console's name (`debian`; RancherOS's `ubuntu`,
    /// `alpine`, ... read, and the user-data's check warns that the machine comes up on
    /// the default console unless an image of that name is loaded), or an image.
    ConsoleName,
    |s| {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        if first_ok && s.len() <= 128 && chars.all(|c| c.is_ascii_alphanumeric() || "_.-/:".contains(c)) {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a console name; use `default` or an image's name".into(),
            })
        }
    }
);

checked_string!(
    /// An http:// or https:// URL.
    Url,
    |s| {
        if (s.starts_with("http://") || s.starts_with("https://")) && !s.contains(char::is_whitespace) {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not a URL; write http://host/path".into(),
            })
        }
    }
);

checked_string!(
    /// An absolute path with no `..` in it.
    AbsPath,
    |s| {
        if s.starts_with('/') && !s.split('/').any(|p| p == "..") && !s.chars().any(char::is_control) {
            Ok(())
        } else {
            Err(crate::ConfigError::Invalid {
                value: s.to_string(),
                problem: "is not an absolute path; write it from /, without `..`".into(),
            })
        }
    }
);

checked_string!(
    /// An address with its prefix length, `10.0.0.5/24` or `fd00::5/64`.
    Cidr,
    |s| {
        let invalid = |problem: String| crate::ConfigError::Invalid {
            value: s.to_string(),
            problem,
        };
        let (ip, len) = s
            .split_once('/')
            .ok_or_else(|| invalid("has no prefix length; write the address as 10.0.0.5/24".into()))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| invalid(format!("holds {ip:?}, which is not an IP address")))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match len.parse::<u8>() {
            Ok(n) if n <= max => Ok(()),
            _ => Err(invalid(format!(
                "is out of range: the prefix length must be 0 to {max}"
            ))),
        }
    }
);
