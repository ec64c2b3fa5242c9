//! The Debian suites Corral is built from, and the private apt configuration each set of
//! suites gets: its own sources, package lists, dpkg status and archive directory under
//! the build cache. The build host's apt sources are never read or changed; only its
//! `Acquire::` transport settings (proxies, a mirror's validity checks) carry over, since
//! they describe the host's network rather than what Corral is made of.

use crate::error::{BuildError, Result};
use crate::host;
use serde::Deserialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's archive and its security archive.
pub const MIRROR: &str = "http://deb.debian.org/debian";
pub const SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";
/// The keyring Debian's `debian-archive-keyring` package installs; it carries trixie's
/// keys, which also sign unstable, from Debian 12's 2023.3+deb12u2 on.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Package lists older than this are fetched again before a build resolves anything.
/// A day keeps security updates flowing without a network round trip per build.
const LISTS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A Debian suite Corral takes packages from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// Debian 13 with its point updates and security updates: the root and most images.
    #[default]
    Trixie,
    /// Debian's rolling development suite: the newest Docker that Debian packages.
    Unstable,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Trixie => "trixie",
            Suite::Unstable => "unstable",
        }
    }

    /// The `deb` lines of the suite.
    fn sources(self) -> Vec<String> {
        let line =
            |mirror: &str, suite: &str| format!("deb [signed-by={KEYRING}] {mirror} {suite} main");
        match self {
            Suite::Trixie => vec![
                line(MIRROR, "trixie"),
                line(MIRROR, "trixie-updates"),
                line(SECURITY_MIRROR, "trixie-security"),
            ],
            Suite::Unstable => vec![line(MIRROR, "unstable")],
        }
    }

    /// The suite an archive (as apt-cache madison names it) belongs to:
    /// `trixie-security` is trixie's.
    pub fn of_archive(archive: &str) -> Option<Suite> {
        match archive.split('-').next()? {
            "trixie" => Some(Suite::Trixie),
            "unstable" | "sid" => Some(Suite::Unstable),
            _ => None,
        }
    }
}

/// What one apt configuration sees: a base suite, and optionally a newer suite from which
/// only the packages asked for by `name/suite` come, their dependencies from the base
/// wherever the base satisfies them (as `apt install -t unstable docker-cli` on trixie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct View {
    pub base: Suite,
    pub newer: Option<Suite>,
}

impl View {
    pub fn of(base: Suite) -> View {
        View { base, newer: None }
    }

    /// `trixie`, `unstable`, `trixie+unstable`: also the folder under `<cache>/apt/`.
    pub fn name(&self) -> String {
        match self.newer {
            Some(n) if n != self.base => format!("{}+{}", self.base.name(), n.name()),
            _ => self.base.name().to_string(),
        }
    }

    fn suites(&self) -> Vec<Suite> {
        let mut s = vec![self.base];
        s.extend(self.newer.filter(|n| *n != self.base));
        s
    }

    pub fn contains(&self, suite: Suite) -> bool {
        self.suites().contains(&suite)
    }

    fn sources_list(&self) -> String {
        let mut text = String::from("# Written by corral-build; the build's own sources.\n");
        for s in self.suites() {
            for l in s.sources() {
                text.push_str(&l);
                text.push('\n');
            }
        }
        text
    }

    /// apt preferences: the base suite's archives above the newer suite's, so only the
    /// packages named `name/<newer>` come from the newer one.
    fn preferences(&self) -> String {
        let mut text = String::new();
        if self.newer.is_some_and(|n| n != self.base) {
            for archive in self.base.sources() {
                let codename = archive.split_whitespace().nth(3).unwrap_or_default();
                text.push_str(&format!(
                    "Package: *\nPin: release n={codename}\nPin-Priority: 990\n\n"
                ));
            }
        }
        text
    }
}

/// The `Acquire::` settings of the host's apt that describe its network (proxies, and a
/// mirror whose Release files carry an old Valid-Until), as `apt-config dump` prints
/// them. Everything else of the host's configuration stays out.
pub fn host_transport(dump: &str) -> Vec<String> {
    const KEEP: &[&str] = &[
        "Acquire::Check-Valid-Until ",
        "Acquire::Check-Date ",
        "Acquire::http::Proxy ",
        "Acquire::https::Proxy ",
        "Acquire::http::proxy ",
        "Acquire::https::proxy ",
    ];
    dump.lines()
        .filter(|l| KEEP.iter().any(|k| l.starts_with(k)))
        .map(|l| format!("{};", l.trim_end_matches(';')))
        .collect()
}

/// One view's private apt: the configuration file that every apt-get and apt-cache call
/// of the build reads through `APT_CONFIG`.
#[derive(Debug, Clone)]
pub struct Config {
    pub view: View,
    pub dir: PathBuf,
    pub conf: PathBuf,
}

impl Config {
    /// Writes the configuration under `<cache>/apt/<view>/` (idempotent).
    pub fn write(cache: &Path, view: View, transport: &[String]) -> Result<Config> {
        let dir = cache.join("apt").join(view.name());
        for sub in [
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/sources.list.d",
            "lists/partial",
            "archives/partial",
            "state",
        ] {
            let d = dir.join(sub);
            fs::create_dir_all(&d).map_err(BuildError::write(&d))?;
        }
        let status = dir.join("state/status");
        if !status.exists() {
            fs::write(&status, "").map_err(BuildError::write(&status))?;
        }
        put(&dir.join("etc/sources.list"), &view.sources_list())?;
        put(&dir.join("etc/preferences"), &view.preferences())?;
        let d = dir.display();
        let mut conf = format!(
            "// Written by corral-build: apt for Corral's {name} packages. The host's apt\n\
             // sources, preferences and status are not read.\n\
             Dir::Etc \"{d}/etc\";\n\
             Dir::Etc::main \"/dev/null\";\n\
             Dir::Etc::parts \"{d}/etc/apt.conf.d\";\n\
             Dir::Etc::sourcelist \"{d}/etc/sources.list\";\n\
             Dir::Etc::sourceparts \"{d}/etc/sources.list.d\";\n\
             Dir::Etc::preferences \"{d}/etc/preferences\";\n\
             Dir::Etc::preferencesparts \"{d}/etc/preferences.d\";\n\
             Dir::State \"{d}/state\";\n\
             Dir::State::lists \"{d}/lists\";\n\
             Dir::State::status \"{d}/state/status\";\n\
             Dir::Cache \"{d}\";\n\
             Dir::Cache::archives \"{d}/archives\";\n\
             APT::Architecture \"amd64\";\n\
             APT::Architectures {{ \"amd64\"; }};\n\
             APT::Install-Recommends \"false\";\n\
             Acquire::Languages \"none\";\n\
             Debug::NoLocking \"true\";\n\
             APT::Sandbox::User \"root\";\n",
            name = view.name()
        );
        for line in transport {
            conf.push_str(line);
            conf.push('\n');
        }
        let path = dir.join("apt.conf");
        put(&path, &conf)?;
        Ok(Config {
            view,
            dir,
            conf: path,
        })
    }

    /// A command of apt's (`apt-get`, `apt-cache`) that reads this configuration only.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("APT_CONFIG", &self.conf);
        cmd
    }

    /// When the package lists were last fetched, if ever.
    fn lists_age(&self) -> Option<std::time::Duration> {
        let newest = fs::read_dir(self.dir.join("lists"))
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("_Packages"))
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .max()?;
        newest.elapsed().ok()
    }

    /// Fetches the package lists when asked, or when they are missing or a day old.
    pub fn update(&self, force: bool) -> Result<()> {
        let stale = self.lists_age().is_none_or(|age| age > LISTS_MAX_AGE);
        if !force && !stale {
            return Ok(());
        }
        host::require("apt-get")?;
        let out = host::run(self.command("apt-get").args(["-q", "update"]))?;
        // apt-get update exits 0 when a source failed to download; its W:/E: lines say so.
        if let Some(line) = out
            .lines()
            .find(|l| l.starts_with("E:") || l.starts_with("Err:"))
        {
            return Err(BuildError::Command {
                command: format!("apt-get update ({})", self.view.name()),
                detail: line.to_string(),
            });
        }
        Ok(())
    }
}

/// Writes `text` to `path` unless it already holds exactly that.
fn put(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    fs::write(path, text).map_err(BuildError::write(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trixie_is_three_archives_and_unstable_one() {
        let list = View::of(Suite::Trixie).sources_list();
        for s in ["trixie main", "trixie-updates main", "trixie-security main"] {
            assert!(list.contains(s), "{list}");
        }
        assert!(list.contains(SECURITY_MIRROR));
        assert!(!list.contains("unstable"));
        assert_eq!(View::of(Suite::Unstable).sources_list().lines().count(), 2);
        assert!(View::of(Suite::Trixie).preferences().is_empty());
    }

    #[test]
    fn a_mixed_view_pins_its_base_above_the_newer_suite() {
        let v = View {
            base: Suite::Trixie,
            newer: Some(Suite::Unstable),
        };
        assert_eq!(v.name(), "trixie+unstable");
        assert!(v.sources_list().contains("unstable main"));
        let prefs = v.preferences();
        assert_eq!(prefs.matches("Pin-Priority: 990").count(), 3, "{prefs}");
        assert!(prefs.contains("n=trixie-security"), "{prefs}");
        assert!(!prefs.contains("n=unstable"), "{prefs}");
        assert_eq!(
            View {
                base: Suite::Unstable,
                newer: Some(Suite::Unstable)
            }
            .name(),
            "unstable"
        );
    }

    #[test]
    fn archives_map_to_their_suite() {
        assert_eq!(Suite::of_archive("trixie-security"), Some(Suite::Trixie));
        assert_eq!(Suite::of_archive("trixie"), Some(Suite::Trixie));
        assert_eq!(Suite::of_archive("unstable"), Some(Suite::Unstable));
        assert_eq!(Suite::of_archive("bookworm"), None);
    }

    #[test]
    fn only_the_hosts_transport_settings_carry_over() {
        let dump = "Acquire::Check-Valid-Until \"false\";\nAcquire::GzipIndexes \"true\";\n\
                    Acquire::http::Proxy \"http://127.0.0.1:3142\";\nDir::Etc \"/etc/apt/\";\n";
        assert_eq!(
            host_transport(dump),
            [
                "Acquire::Check-Valid-Until \"false\";",
                "Acquire::http::Proxy \"http://127.0.0.1:3142\";"
            ]
        );
    }

    #[test]
    fn the_config_keeps_apt_off_the_hosts_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Config::write(dir.path(), View::of(Suite::Unstable), &[]).expect("write");
        let conf = fs::read_to_string(&c.conf).expect("conf");
        assert!(conf.contains("Dir::Etc::main \"/dev/null\";"), "{conf}");
        assert!(!conf.contains("/etc/apt/sources.list"), "{conf}");
        assert!(c.dir.ends_with("apt/unstable"));
        assert!(c.dir.join("state/status").is_file());
        assert_eq!(
            c.command("apt-get")
                .get_envs()
                .next()
                .map(|(k, _)| k.to_owned()),
            Some("APT_CONFIG".into())
        );
    }
}
