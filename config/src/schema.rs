//! The cloud-config schema: RancherOS's keys (under `corral:`, with `rancher:` read as the
//! same section) and cloud-init's basics at the top level. Every value is checked while it
//! is read, so a wrong type or a bad value is an error with the key's path, the line and
//! the column, and a hint. Unknown keys are accepted (and reported as warnings by
//! [`crate::userdata`]), so a RancherOS cloud-config loads unchanged.

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;

/// A machine's configuration (cloud-config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CloudConfig {
    /// Public keys allowed to log in as `corral` over ssh.
    #[serde(default, deserialize_with = "null_is_default")]
    pub ssh_authorized_keys: Vec<String>,
    /// The host name.
    #[serde(default)]
    pub hostname: Option<Hostname>,
    /// Files written at boot, before the services start (or into a service).
    #[serde(default, deserialize_with = "null_is_default")]
    pub write_files: Vec<WriteFile>,
    /// Commands run in the console once it has started, every boot.
    #[serde(default, deserialize_with = "null_is_default")]
    pub runcmd: Vec<Command>,
    /// Commands run on the host before the services start, every boot.
    #[serde(default, deserialize_with = "null_is_default")]
    pub bootcmd: Vec<Command>,
    /// Filesystems mounted before the services start: cloud-init's
    /// `[device, mount point, type, options]` lists.
    #[serde(default, deserialize_with = "null_is_default")]
    pub mounts: Vec<Mount>,
    /// Corral's own section; `rancher:` is read as an alias.
    #[serde(default, alias = "rancher", deserialize_with = "null_is_default")]
    pub corral: Corral,
}

/// The `corral:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Corral {
    /// More authorized keys: what `corral.ssh_authorized_keys=[...]` on the kernel
    /// command line sets.
    #[serde(default, deserialize_with = "null_is_default")]
    pub ssh_authorized_keys: Vec<String>,
    /// Consoles that log `corral` in without a prompt.
    #[serde(default)]
    pub autologin: Autologin,
    #[serde(default, deserialize_with = "null_is_default")]
    pub network: Network,
    /// Extra system services, in docker-compose form (checked by the manager).
    #[serde(default, deserialize_with = "null_is_default")]
    pub services: BTreeMap<String, ServiceSpec>,
    /// Optional services to turn on (`true`) or off, by name.
    #[serde(default, deserialize_with = "null_is_default")]
    pub services_include: BTreeMap<ServiceName, bool>,
    /// Kernel modules to load at boot (a list, or `a,b` as PID 1 takes it from the
    /// kernel command line).
    #[serde(default, deserialize_with = "list_or_commas")]
    pub modules: Vec<ModuleName>,
    /// The host name from the kernel command line (`corral.hostname=`); wins over
    /// `hostname:`.
    #[serde(default)]
    pub hostname: Option<Hostname>,
    /// Kernel parameters (`net.ipv4.ip_forward: 1`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub sysctl: BTreeMap<SysctlKey, Scalar>,
    /// Variables every system service gets (`HTTP_PROXY: http://...`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub environment: BTreeMap<EnvName, Scalar>,
    /// The user engine (issue "the user engine" reads it).
    #[serde(default, deserialize_with = "null_is_default")]
    pub docker: Engine,
    /// The system engine.
    #[serde(default, deserialize_with = "null_is_default")]
    pub system_docker: Engine,
    #[serde(default, deserialize_with = "null_is_default")]
    pub ssh: Ssh,
    /// Where the state partition is and whether to format it.
    #[serde(default, deserialize_with = "null_is_default")]
    pub state: State,
    /// The console image; only the default one exists.
    #[serde(default)]
    pub console: Option<ConsoleName>,
    /// Seconds the services get to stop at shutdown.
    #[serde(default)]
    pub shutdown_timeout: Option<u32>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub cloud_init: CloudInit,
    /// User-data from this URL (`corral.cloud_config_url=` on the kernel command line).
    #[serde(default)]
    pub cloud_config_url: Option<Url>,
}

/// A list, or one string of comma-separated items (`corral.modules=a,b`).
fn list_or_commas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ModuleName>, D::Error> {
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
fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
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
struct ScalarVisitor(fn(&str) -> Result<(), String>);

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
    /// A host name: letters, digits, `-` and `.`, up to 253 characters, 63 a label.
    Hostname,
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if ok {
            Ok(())
        } else {
            Err(format!("{s:?} is not a valid host name; use letters, digits and `-`, in labels of up to 63 separated by `.`"))
        }
    }
);

checked_string!(
    /// A kernel module name (`br_netfilter`), optionally with parameters after a space.
    ModuleName,
    check_module
);

fn check_module(s: &str) -> Result<(), String> {
    let name = s.split_whitespace().next().unwrap_or_default();
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a module name; write the name as modprobe takes it, like br_netfilter"
        ))
    }
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
            Err(format!("{s:?} is not a sysctl key; write it as sysctl does, like net.ipv4.ip_forward"))
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
            Err(format!("{s:?} is not an environment variable name; use letters, digits and _, like HTTP_PROXY"))
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
            Err(format!("{s:?} is not a service name; use letters, digits, `_`, `.` and `-`"))
        }
    }
);

checked_string!(
    /// The console's name; Corral has one console, `default` (RancherOS's alternative
    /// consoles are images Corral does not ship).
    ConsoleName,
    |s| {
        if s == "default" || s == "corral" {
            Ok(())
        } else {
            Err(format!("console {s:?} does not exist; Corral ships the `default` console only (remove the key)"))
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
            Err(format!("{s:?} is not a URL; write http://host/path"))
        }
    }
);

checked_string!(
    /// An absolute path with no `..` in it.
    AbsPath,
    |s| {
        if s.starts_with('/') && !s.split('/').any(|p| p == "..") && !s.contains('\0') {
            Ok(())
        } else {
            Err(format!("{s:?} is not an absolute path; write it from /, without `..`"))
        }
    }
);

checked_string!(
    /// An address with its prefix length, `10.0.0.5/24` or `fd00::5/64`.
    Cidr,
    |s| {
        let (ip, len) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} has no prefix length; write the address as 10.0.0.5/24")
        })?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{s:?}: {ip:?} is not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match len.parse::<u8>() {
            Ok(n) if n <= max => Ok(()),
            _ => Err(format!("{s:?}: the prefix length must be 0 to {max}")),
        }
    }
);

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

/// How a `write_files` entry's content is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Plain,
    Base64,
    Gzip,
    GzipBase64,
}

impl Encoding {
    fn from_name(s: &str) -> Result<Encoding, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "" | "text/plain" | "plain" => Encoding::Plain,
            "b64" | "base64" => Encoding::Base64,
            "gz" | "gzip" => Encoding::Gzip,
            "gz+base64" | "gzip+base64" | "gz+b64" | "gzip+b64" => Encoding::GzipBase64,
            _ => {
                return Err(format!(
                    "encoding {s:?} is not known; use b64, gzip or gz+b64 (or leave it out for plain text)"
                ))
            }
        })
    }
}

impl<'de> Deserialize<'de> for Encoding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_any(ScalarVisitor(|s| Encoding::from_name(s).map(|_| ())))?;
        Encoding::from_name(&s).map_err(serde::de::Error::custom)
    }
}

/// The largest file `write_files` writes (after decoding).
pub const MAX_FILE: usize = 1 << 20;

/// Decodes `content` as `encoding` says.
pub fn decode(content: &str, encoding: Encoding) -> Result<Vec<u8>, String> {
    let b64 = |s: &str| {
        let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(clean)
            .map_err(|e| format!("content is not valid base64 ({e}); check the encoding"))
    };
    let gunzip = |b: &[u8]| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .take(MAX_FILE as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("content is not valid gzip ({e}); check the encoding"))?;
        if out.len() > MAX_FILE {
            return Err(format!("content unpacks to more than {MAX_FILE} bytes"));
        }
        Ok(out)
    };
    match encoding {
        Encoding::Plain => Ok(content.as_bytes().to_vec()),
        Encoding::Base64 => b64(content),
        Encoding::Gzip => gunzip(content.as_bytes()),
        Encoding::GzipBase64 => gunzip(&b64(content)?),
    }
}

/// A file mode: `"0644"`, `"644"`, `0o644` or the number itself (`420`), as cloud-init
/// reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        let bad = |what: String| {
            serde::de::Error::custom(format!(
                "{what} is not a file mode; write it in octal as a string, like \"0644\""
            ))
        };
        let mode = match Raw::deserialize(d).map_err(|_| bad("this".into()))? {
            Raw::N(n) => n,
            Raw::S(s) => {
                let digits = s.trim().trim_start_matches("0o");
                u32::from_str_radix(digits, 8).map_err(|_| bad(format!("{s:?}")))?
            }
        };
        if mode > 0o7777 {
            return Err(bad(format!("{mode:o} (octal)")));
        }
        Ok(Mode(mode))
    }
}

/// One `write_files` entry, its content decoded and checked as it is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawWriteFile")]
pub struct WriteFile {
    pub path: AbsPath,
    /// The decoded bytes.
    pub content: Vec<u8>,
    /// Default 0644.
    pub permissions: Mode,
    /// `user`, `user:group`, or numeric ids; default root.
    pub owner: Option<String>,
    pub append: bool,
    /// A service to write the file into, instead of the host.
    pub container: Option<ServiceName>,
}

#[derive(Deserialize)]
struct RawWriteFile {
    path: AbsPath,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    permissions: Option<Mode>,
    #[serde(default)]
    owner: Option<Scalar>,
    #[serde(default)]
    append: bool,
    #[serde(default)]
    container: Option<ServiceName>,
}

impl TryFrom<RawWriteFile> for WriteFile {
    type Error = String;

    fn try_from(raw: RawWriteFile) -> Result<Self, String> {
        let content = decode(raw.content.as_deref().unwrap_or_default(), raw.encoding)
            .map_err(|e| format!("write_files entry for {}: {e}", raw.path))?;
        if content.len() > MAX_FILE {
            return Err(format!(
                "write_files entry for {}: more than {MAX_FILE} bytes",
                raw.path
            ));
        }
        if let Some(owner) = &raw.owner {
            let ok = owner.0.split(':').count() <= 2
                && owner.0.split(':').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                });
            if !ok {
                return Err(format!(
                    "write_files entry for {}: owner {:?} is not `user` or `user:group`",
                    raw.path, owner.0
                ));
            }
        }
        Ok(WriteFile {
            path: raw.path,
            content,
            permissions: raw.permissions.unwrap_or(Mode(0o644)),
            owner: raw.owner.map(|o| o.0),
            append: raw.append,
            container: raw.container,
        })
    }
}

/// One `mounts` entry: `[device, mount point, type, options]`; type defaults to `auto`
/// and options to `defaults` (cloud-init's fstab columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub target: AbsPath,
    pub fstype: String,
    pub options: String,
}

impl<'de> Deserialize<'de> for Mount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hint = "a mount is a list: [device, mount point, type, options], like [/dev/vdb, /mnt/data, ext4, defaults]";
        let fields: Vec<Option<Scalar>> =
            Vec::deserialize(d).map_err(|_| serde::de::Error::custom(hint))?;
        let field = |i: usize| {
            fields
                .get(i)
                .cloned()
                .flatten()
                .map(|s| s.0)
                .filter(|s| !s.trim().is_empty())
        };
        let (Some(device), Some(target)) = (field(0), field(1)) else {
            return Err(serde::de::Error::custom(hint));
        };
        if !target.starts_with('/') || target.split('/').any(|p| p == "..") {
            return Err(serde::de::Error::custom(format!(
                "mount point {target:?} is not an absolute path"
            )));
        }
        Ok(Mount {
            device,
            target: AbsPath(target),
            fstype: field(2).unwrap_or_else(|| "auto".into()),
            options: field(3).unwrap_or_else(|| "defaults".into()),
        })
    }
}

/// `corral.network`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Network {
    /// By name (`eth0`), wildcard (`eth*`) or MAC address (`mac=52:54:00:12:34:56`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub interfaces: BTreeMap<String, Interface>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub dns: Dns,
}

/// One interface's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Interface {
    /// DHCP on it (the default when no address is given).
    #[serde(default)]
    pub dhcp: Option<bool>,
    #[serde(default)]
    pub address: Option<Cidr>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub addresses: Vec<Cidr>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub gateway_ipv6: Option<IpAddr>,
    #[serde(default)]
    pub mtu: Option<Mtu>,
}

/// An MTU, 68 (IPv4's minimum) to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mtu(pub u32);

impl<'de> Deserialize<'de> for Mtu {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Mtu;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an mtu, a number like 1500")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Mtu, E> {
                match u32::try_from(n) {
                    Ok(n) if (68..=65535).contains(&n) => Ok(Mtu(n)),
                    _ => Err(E::custom(format!(
                        "mtu {n} is out of range; use 68 to 65535 (1500 on most networks)"
                    ))),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Mtu, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_u32(V)
    }
}

/// `corral.network.dns`: replaces what DHCP says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Dns {
    #[serde(default, deserialize_with = "null_is_default")]
    pub nameservers: Vec<IpAddr>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub search: Vec<Hostname>,
}

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

/// `corral.docker` and `corral.system_docker`: an engine's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Engine {
    /// The engine's flags, replacing the defaults (RancherOS's `args`).
    #[serde(default)]
    pub args: Option<Vec<Scalar>>,
    /// Flags added to the defaults.
    #[serde(default, deserialize_with = "null_is_default")]
    pub extra_args: Vec<Scalar>,
    /// The engine's environment (`[HTTP_PROXY=...]` or a mapping).
    #[serde(default, deserialize_with = "null_is_default")]
    pub environment: EnvList,
    #[serde(default)]
    pub storage_driver: Option<String>,
    #[serde(default)]
    pub log_driver: Option<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub log_opts: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub registry_mirror: Option<Url>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub insecure_registry: Vec<String>,
    #[serde(default)]
    pub bip: Option<Cidr>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub debug: Option<bool>,
    #[serde(default)]
    pub tls: Option<bool>,
    /// dockerd's TLS flags when `tls` is on, instead of Corral's (RancherOS's key; file
    /// names are relative to the TLS folder).
    #[serde(default)]
    pub tls_args: Option<Vec<Scalar>>,
    /// The engine image (`corral/engine:<version>` when unset).
    #[serde(default)]
    pub engine: Option<String>,
    /// The bridge containers attach to (`none`: no default bridge).
    #[serde(default)]
    pub bridge: Option<String>,
    #[serde(default)]
    pub live_restore: Option<bool>,
    #[serde(default)]
    pub userland_proxy: Option<bool>,
    /// More sockets for the engine to listen on (`tcp://0.0.0.0:2375`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub host: Vec<String>,
    /// PEM texts to use instead of generated TLS files (RancherOS's keys).
    #[serde(default)]
    pub ca_cert: Option<String>,
    #[serde(default)]
    pub ca_key: Option<String>,
    #[serde(default)]
    pub server_cert: Option<String>,
    #[serde(default)]
    pub server_key: Option<String>,
    /// RancherOS's keys that place the engine's files or pick its process model; Corral
    /// fixes those, so the engine reports any of them as an error naming the key.
    #[serde(default)]
    pub graph: Option<yaml_serde::Value>,
    #[serde(default)]
    pub exec_root: Option<yaml_serde::Value>,
    #[serde(default)]
    pub pid_file: Option<yaml_serde::Value>,
    #[serde(default)]
    pub config_file: Option<yaml_serde::Value>,
    #[serde(default)]
    pub containerd: Option<yaml_serde::Value>,
    #[serde(default)]
    pub restart: Option<yaml_serde::Value>,
    #[serde(default)]
    pub selinux_enabled: Option<yaml_serde::Value>,
    #[serde(default)]
    pub storage_context: Option<yaml_serde::Value>,
    #[serde(default)]
    pub exec: Option<yaml_serde::Value>,
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

/// `corral.ssh`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Ssh {
    /// Host keys to use instead of generated ones: `ed25519`, `ed25519-pub`, `ecdsa`,
    /// `ecdsa-pub` (RancherOS also had `rsa`, `dsa`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub keys: BTreeMap<String, String>,
    /// sshd's port (default 22).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub listen_address: Option<IpAddr>,
    /// Whether sshd runs at all (default true).
    #[serde(default)]
    pub daemon: Option<bool>,
}

/// `corral.state`: the state partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct State {
    /// The device, `LABEL=CORRAL_STATE` by default.
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub fstype: Option<String>,
    /// Devices that may be formatted when they are blank.
    #[serde(default, deserialize_with = "null_is_default")]
    pub autoformat: Vec<String>,
    #[serde(default)]
    pub wait: Option<bool>,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub formatzero: Option<bool>,
}

/// `corral.cloud_init`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CloudInit {
    /// Where user-data comes from, tried in parallel (default: cmdline, nocloud,
    /// configdrive, ec2).
    #[serde(default)]
    pub datasources: Option<Vec<Datasource>>,
}

/// A datasource, as written in `corral.cloud_init.datasources`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Datasource {
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

impl std::fmt::Display for Datasource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Datasource::Cmdline => f.write_str("cmdline"),
            Datasource::NoCloud(None) => f.write_str("nocloud"),
            Datasource::NoCloud(Some(p)) => write!(f, "nocloud:{p}"),
            Datasource::ConfigDrive(None) => f.write_str("configdrive"),
            Datasource::ConfigDrive(Some(p)) => write!(f, "configdrive:{p}"),
            Datasource::Ec2 => f.write_str("ec2"),
            Datasource::Url(u) => write!(f, "url:{u}"),
            Datasource::File(p) => write!(f, "file:{p}"),
        }
    }
}

impl std::str::FromStr for Datasource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a.to_string()).filter(|a| !a.is_empty())),
            None => (s, None),
        };
        let path = |a: Option<String>| -> Result<Option<String>, String> {
            match a {
                Some(p) if !p.starts_with('/') => {
                    Err(format!("{s:?}: {p:?} is not an absolute path"))
                }
                other => Ok(other),
            }
        };
        Ok(match (kind, arg) {
            ("cmdline", None) => Datasource::Cmdline,
            ("nocloud", a) => Datasource::NoCloud(path(a)?),
            ("configdrive", a) => Datasource::ConfigDrive(path(a)?),
            ("ec2", None) => Datasource::Ec2,
            ("url", Some(u)) if u.starts_with("http://") || u.starts_with("https://") => {
                Datasource::Url(u)
            }
            ("file", Some(p)) if p.starts_with('/') => Datasource::File(p),
            _ => {
                return Err(format!(
                    "datasource {s:?} is not one Corral knows; use cmdline, nocloud, configdrive, ec2, url:http://... or file:/path"
                ))
            }
        })
    }
}

impl<'de> Deserialize<'de> for Datasource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(|s| s.parse::<Datasource>().map(|_| ())))?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The datasources tried when none are configured.
pub fn default_datasources() -> Vec<Datasource> {
    vec![
        Datasource::Cmdline,
        Datasource::NoCloud(None),
        Datasource::ConfigDrive(None),
        Datasource::Ec2,
    ]
}

impl CloudConfig {
    /// The host name to set: `corral.hostname` (the kernel command line's) or
    /// `hostname`.
    pub fn host_name(&self) -> Option<&Hostname> {
        self.corral.hostname.as_ref().or(self.hostname.as_ref())
    }

    /// Every authorized key, from both places, each once, in order.
    pub fn authorized_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for k in self
            .ssh_authorized_keys
            .iter()
            .chain(&self.corral.ssh_authorized_keys)
        {
            let k = k.trim();
            if !k.is_empty() && !keys.iter().any(|have| have == k) {
                keys.push(k.to_string());
            }
        }
        keys
    }
}

/// The keys the schema reads, section by section, for the unknown-key warnings. `*`
/// stands for any name (an interface, a service).
pub const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "ssh_authorized_keys",
            "hostname",
            "write_files",
            "runcmd",
            "bootcmd",
            "mounts",
            "corral",
            "rancher",
        ],
    ),
    (
        "corral",
        &[
            "ssh_authorized_keys",
            "autologin",
            "network",
            "services",
            "services_include",
            "modules",
            "sysctl",
            "environment",
            "docker",
            "system_docker",
            "ssh",
            "state",
            "console",
            "shutdown_timeout",
            "cloud_init",
            "cloud_config_url",
            "hostname",
            // Boot options PID 1 reads from the kernel command line.
            "cgroup",
            "debug_shell",
            "recovery",
        ],
    ),
    ("corral.network", &["interfaces", "dns"]),
    (
        "corral.network.interfaces.*",
        &[
            "dhcp",
            "address",
            "addresses",
            "gateway",
            "gateway_ipv6",
            "mtu",
        ],
    ),
    ("corral.network.dns", &["nameservers", "search"]),
    (
        "write_files.*",
        &[
            "path",
            "content",
            "encoding",
            "permissions",
            "owner",
            "append",
            "container",
        ],
    ),
    ("corral.docker", ENGINE_KEYS),
    ("corral.system_docker", ENGINE_KEYS),
    ("corral.ssh", &["keys", "port", "listen_address", "daemon"]),
    (
        "corral.state",
        &[
            "dev",
            "fstype",
            "autoformat",
            "wait",
            "required",
            "formatzero",
        ],
    ),
    ("corral.cloud_init", &["datasources"]),
];

const ENGINE_KEYS: &[&str] = &[
    "args",
    "extra_args",
    "environment",
    "storage_driver",
    "log_driver",
    "log_opts",
    "registry_mirror",
    "insecure_registry",
    "bip",
    "group",
    "debug",
    "tls",
    "tls_args",
    "engine",
    "bridge",
    "live_restore",
    "userland_proxy",
    "host",
    "ca_cert",
    "ca_key",
    "server_cert",
    "server_key",
    "graph",
    "exec_root",
    "pid_file",
    "config_file",
    "containerd",
    "restart",
    "selinux_enabled",
    "storage_context",
    "exec",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> CloudConfig {
        yaml_serde::from_str(yaml).expect("parses")
    }

    fn error(yaml: &str) -> String {
        yaml_serde::from_str::<CloudConfig>(yaml)
            .expect_err(yaml)
            .to_string()
    }

    /// Every key of the reference example reads into its field.
    #[test]
    fn every_key_of_the_full_example() {
        let text = include_str!("../examples/full.yml");
        let c = parse(text);
        assert_eq!(c.hostname.as_deref(), Some("web1"));
        assert_eq!(c.authorized_keys().len(), 1);
        let files = &c.write_files;
        assert_eq!(files.len(), 5);
        assert_eq!(files[0].content, b"Welcome to web1.\n");
        assert_eq!(files[0].permissions, Mode(0o644));
        assert_eq!(files[1].permissions, Mode(0o600));
        assert_eq!(files[1].owner.as_deref(), Some("corral:corral"));
        assert_eq!(files[2].content, b"hello\n");
        assert!(files[3].append);
        assert_eq!(files[4].container.as_deref(), Some("console"));
        assert_eq!(
            c.bootcmd,
            [Command::Shell("echo bootcmd ran > /run/bootcmd".into())]
        );
        assert_eq!(
            c.runcmd[1],
            Command::Argv(vec!["touch".into(), "/run/runcmd-argv".into()])
        );
        assert_eq!(c.runcmd[1].argv(), ["touch", "/run/runcmd-argv"]);
        assert_eq!(c.runcmd[0].argv()[..2], ["/bin/sh", "-c"]);
        assert_eq!(
            c.mounts,
            [Mount {
                device: "/dev/vdb".into(),
                target: AbsPath("/mnt/data".into()),
                fstype: "ext4".into(),
                options: "defaults,noatime".into()
            }]
        );
        let k = &c.corral;
        assert_eq!(k.autologin, Autologin::Ttys(vec!["ttyS0".into()]));
        let eth0 = &k.network.interfaces["eth0"];
        assert_eq!((eth0.dhcp, eth0.mtu), (Some(true), Some(Mtu(1500))));
        let by_mac = &k.network.interfaces["mac=52:54:00:12:34:57"];
        assert_eq!(by_mac.address.as_deref(), Some("10.0.1.5/24"));
        assert_eq!(by_mac.gateway, Some("10.0.1.1".parse().expect("ip")));
        assert!(k.network.interfaces.contains_key("eth*"));
        assert_eq!(k.network.dns.nameservers.len(), 2);
        assert_eq!(k.network.dns.search[0].0, "corp.example");
        assert_eq!(k.services["hello"].0["restart"], "always");
        assert!(!k.services_include[&ServiceName("extra".into())]);
        assert_eq!(k.modules[0].0, "br_netfilter");
        assert_eq!(k.sysctl[&SysctlKey("net.ipv4.ip_forward".into())].0, "1");
        assert_eq!(
            k.environment[&EnvName("HTTP_PROXY".into())].0,
            "http://proxy.corp:3128"
        );
        assert_eq!(k.docker.extra_args, [Scalar("--debug".into())]);
        assert_eq!(k.docker.storage_driver.as_deref(), Some("overlay2"));
        assert_eq!(k.docker.log_opts["max-size"].0, "10m");
        assert_eq!(k.docker.insecure_registry, ["registry.corp:5000"]);
        assert_eq!(k.docker.bip.as_deref(), Some("172.18.0.1/16"));
        assert!(k.docker.registry_mirror.is_some() && k.docker.log_driver.is_some());
        assert_eq!(
            k.system_docker.extra_args,
            [Scalar("--log-level=warn".into())]
        );
        assert_eq!((k.ssh.port, k.ssh.daemon), (Some(22), Some(true)));
        assert_eq!(k.state.dev.as_deref(), Some("LABEL=CORRAL_STATE"));
        assert_eq!(k.state.autoformat, ["/dev/vda"]);
        assert_eq!(k.console.as_deref(), Some("default"));
        assert_eq!(k.shutdown_timeout, Some(30));
        assert_eq!(
            k.cloud_init.datasources.as_deref(),
            Some(
                &[
                    Datasource::NoCloud(None),
                    Datasource::Ec2,
                    Datasource::Url("http://10.0.0.1/user-data".into()),
                    Datasource::File("/var/lib/corral/conf/extra.yml".into())
                ][..]
            )
        );
        // RancherOS's spelling reads the same.
        let rancher = parse(&text.replace("\ncorral:\n", "\nrancher:\n"));
        assert_eq!(rancher, c);
    }

    #[test]
    fn modules_as_pid_1_takes_them_and_the_command_line_hostname() {
        let c = parse("hostname: a\ncorral: {modules: 'dummy, loop', hostname: b}");
        assert_eq!(
            c.corral.modules,
            [ModuleName("dummy".into()), ModuleName("loop".into())]
        );
        assert_eq!(c.host_name().map(|h| &h.0[..]), Some("b"));
        assert_eq!(
            parse("hostname: a").host_name().map(|h| &h.0[..]),
            Some("a")
        );
        assert!(error("corral: {modules: ['a/b']}").contains("is not a module name"));
    }

    #[test]
    fn empty_keys_read_as_their_defaults() {
        let c = parse("write_files:\nruncmd:\ncorral:\n  network:\n  sysctl:\n");
        assert_eq!(c, CloudConfig::default());
    }

    #[test]
    fn modes_encodings_and_commands() {
        let mode = |m: &str| {
            parse(&format!("write_files: [{{path: /a, permissions: {m}}}]")).write_files[0]
                .permissions
        };
        assert_eq!(mode("'0644'"), Mode(0o644));
        assert_eq!(
            mode("0644"),
            Mode(0o644),
            "unquoted, a leading zero keeps it text"
        );
        assert_eq!(mode("'755'"), Mode(0o755));
        assert_eq!(mode("0o600"), Mode(0o600));
        assert_eq!(
            mode("420"),
            Mode(0o644),
            "a number is the mode's value, as cloud-init"
        );
        assert!(error("write_files: [{path: /a, permissions: '0999'}]").contains("not a file mode"));
        assert!(error("write_files: [{path: /a, permissions: 99999}]").contains("not a file mode"));
        let gz_b64 = "H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==";
        let c = parse(&format!(
            "write_files: [{{path: /a, encoding: gz+b64, content: {gz_b64}}}]"
        ));
        assert_eq!(c.write_files[0].content, b"hello");
        assert_eq!(decode("aGk=", Encoding::Base64).expect("b64"), b"hi");
        assert!(decode("!!!", Encoding::Base64).is_err());
        assert!(decode("not gzip", Encoding::Gzip).is_err());
        assert!(error("runcmd: [{a: 1}]").contains("a command is a line of shell"));
        assert!(error("runcmd: ['']").contains("a command is a line of shell"));
        assert_eq!(
            parse("bootcmd: [[echo, 1]]").bootcmd[0].argv(),
            ["echo", "1"]
        );
    }

    #[test]
    fn bad_values_are_named_with_their_key_and_a_hint() {
        let cases = [
            (
                "hostname: -bad-",
                "hostname: \"-bad-\" is not a valid host name",
            ),
            (
                "hostname: [a]",
                "hostname: invalid type: sequence, expected a value",
            ),
            (
                "write_files: [{path: etc/x}]",
                "write_files[0].path: \"etc/x\" is not an absolute path",
            ),
            (
                "write_files: [{content: x}]",
                "write_files[0]: missing field `path`",
            ),
            (
                "write_files: [{path: /x, encoding: rot13}]",
                "write_files[0].encoding: encoding \"rot13\" is not known",
            ),
            (
                "write_files: [{path: /x, owner: 'a b'}]",
                "write_files: write_files entry for /x: owner \"a b\"",
            ),
            ("mounts: [[/dev/vdb]]", "mounts: a mount is a list"),
            (
                "mounts: [[/dev/vdb, mnt]]",
                "mounts: mount point \"mnt\" is not an absolute path",
            ),
            (
                "corral: {network: {interfaces: {eth0: {address: 10.0.0.5}}}}",
                "corral.network.interfaces.eth0.address: \"10.0.0.5\" has no prefix length",
            ),
            (
                "corral: {network: {interfaces: {eth0: {address: 10.0.0.5/33}}}}",
                "the prefix length must be 0 to 32",
            ),
            (
                "corral: {network: {interfaces: {eth0: {gateway: 10.0.0}}}}",
                "corral.network.interfaces.eth0.gateway: invalid IP address syntax",
            ),
            (
                "corral: {network: {interfaces: {eth0: {mtu: 20}}}}",
                "mtu 20 is out of range",
            ),
            (
                "corral: {network: {dns: {nameservers: [dns.google]}}}",
                "corral.network.dns.nameservers[0]: invalid IP address syntax",
            ),
            (
                "corral: {services: {web: {restart: always}}}",
                "corral.services: a service is a docker-compose service with an image",
            ),
            (
                "corral: {services_include: {'a b': true}}",
                "is not a service name",
            ),
            (
                "corral: {modules: ['../evil']}",
                "corral.modules[0]: \"../evil\" is not a module name",
            ),
            (
                "corral: {sysctl: {'net/../../x': 1}}",
                "is not a sysctl key",
            ),
            ("corral: {sysctl: {kernel.x: [1]}}", "expected a value"),
            (
                "corral: {environment: {1BAD: x}}",
                "\"1BAD\" is not an environment variable name",
            ),
            (
                "corral: {docker: {environment: 3}}",
                "corral.docker: environment is a list of KEY=VALUE",
            ),
            (
                "corral: {ssh: {port: 70000}}",
                "corral.ssh.port: invalid value: integer `70000`",
            ),
            (
                "corral: {console: ubuntu}",
                "corral.console: console \"ubuntu\" does not exist",
            ),
            (
                "corral: {shutdown_timeout: soon}",
                "corral.shutdown_timeout: invalid type: string \"soon\"",
            ),
            (
                "corral: {cloud_init: {datasources: [gce]}}",
                "datasource \"gce\" is not one Corral knows",
            ),
            (
                "corral: {cloud_init: {datasources: ['file:relative']}}",
                "datasource \"file:relative\" is not one Corral knows",
            ),
            (
                "corral: {cloud_config_url: ftp://x}",
                "corral.cloud_config_url: \"ftp://x\" is not a URL",
            ),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .map(|(yaml, want)| (yaml, want, error(yaml)))
            .filter(|(_, want, got)| !got.contains(*want))
            .map(|(yaml, want, got)| format!("{yaml}: want {want:?} in {got:?}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn datasources_print_as_they_are_written() {
        for s in [
            "cmdline",
            "nocloud",
            "nocloud:/media/cidata",
            "configdrive",
            "ec2",
            "url:https://x/y",
            "file:/a",
        ] {
            assert_eq!(s.parse::<Datasource>().expect(s).to_string(), s);
        }
    }

    #[test]
    fn keys_from_both_places_are_merged_once() {
        let c =
            parse("ssh_authorized_keys: [a, b]\ncorral:\n  ssh_authorized_keys: [b, ' c ', '']\n");
        assert_eq!(c.authorized_keys(), ["a", "b", "c"]);
    }

    #[test]
    fn autologin_forms() {
        let a = |y: &str| {
            parse(&format!("corral: {{autologin: {y}}}"))
                .corral
                .autologin
        };
        assert_eq!(a("true"), Autologin::All);
        assert_eq!(a("false"), Autologin::Off);
        assert_eq!(a("null"), Autologin::Off);
        assert_eq!(
            a("'tty1,/dev/ttyS0'"),
            Autologin::Ttys(vec!["tty1".into(), "ttyS0".into()])
        );
        assert_eq!(a("[ttyS0]"), Autologin::Ttys(vec!["ttyS0".into()]));
        assert!(a("[ttyS0]").covers("ttyS0") && !a("[ttyS0]").covers("tty1"));
        assert!(Autologin::All.covers("tty1") && !Autologin::Off.covers("tty1"));
        let bad: Result<CloudConfig, _> = yaml_serde::from_str("corral: {autologin: {a: 1}}");
        assert!(bad.is_err());
    }
}
