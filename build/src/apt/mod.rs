//! Debian packages through the build's own apt (see [`suite`]): resolve a package set
//! with its dependencies against an empty dpkg status (so nothing installed on the build
//! host counts), name the suite each package came from, and fetch the .deb files into a
//! cache, each checked against the sha256 apt publishes.

pub mod suite;

pub use suite::{Suite, View};

use crate::error::{BuildError, Result};
use crate::host;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

/// One resolved package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deb {
    pub name: String,
    pub version: String,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// The archive it comes from, as apt names it: `trixie`, `trixie-security`,
    /// `unstable`.
    pub archive: String,
}

impl Deb {
    /// The suite of its archive (trixie for `trixie-security`).
    pub fn suite(&self) -> Option<Suite> {
        Suite::of_archive(&self.archive)
    }

    /// The upstream part of the version: `26.1.5` of `26.1.5+dfsg1-9+deb13u1`.
    pub fn upstream_version(&self) -> &str {
        corral_harness::upstream(&self.version)
    }
}

fn unescape(s: &str) -> String {
    // apt escapes the epoch colon in file names.
    s.replace("%3a", ":").replace("%3A", ":")
}

/// Parses `apt-get --print-uris` output: `'URI' FILE SIZE HASHTYPE:HEX` per package.
/// apt prints whichever hash it lists first (often MD5Sum), so the sha256 is left empty
/// here and filled in from `apt-cache show` by [`parse_sha256s`]. A line that does not
/// parse is returned as an error, never dropped.
pub fn parse_print_uris(text: &str) -> std::result::Result<Vec<Deb>, String> {
    let mut debs = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('\'')) {
        let parsed = (|| {
            let mut f = line.split_whitespace();
            let _uri = f.next()?;
            let filename = f.next()?.to_string();
            let size = f.next()?.parse().ok()?;
            let mut parts = filename.trim_end_matches(".deb").splitn(3, '_');
            let name = parts.next()?.to_string();
            let version = unescape(parts.next()?);
            Some(Deb {
                name,
                version,
                filename,
                size,
                sha256: String::new(),
                archive: String::new(),
            })
        })();
        debs.push(parsed.ok_or_else(|| format!("unexpected line from apt-get: {line}"))?);
    }
    debs.sort();
    Ok(debs)
}

/// (package, version) -> SHA256 from `apt-cache show` paragraphs.
pub fn parse_sha256s(text: &str) -> BTreeMap<(String, String), String> {
    let mut map = BTreeMap::new();
    for para in text.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        if let (Some(p), Some(v), Some(h)) =
            (field("Package:"), field("Version:"), field("SHA256:"))
        {
            map.insert((p, v), h);
        }
    }
    map
}

/// (package, version) -> the archives that carry it, from `apt-cache madison` lines:
/// ` runc | 1.1.15+ds1-2 | http://deb.debian.org/debian trixie/main amd64 Packages`.
pub fn parse_madison(text: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut map: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let [name, version, source] = f[..] else {
            continue;
        };
        let Some(archive) = source
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.split('/').next())
        else {
            continue;
        };
        map.entry((name.to_string(), version.to_string()))
            .or_default()
            .push(archive.to_string());
    }
    map
}

/// The package a failed resolution names as missing from the suites, from apt's errors
/// ("Unable to locate package X", "Package X has no installation candidate", "Release
/// 'unstable' for 'X' was not found").
pub fn missing_package(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        let l = l.trim_start_matches("E: ");
        if let Some(rest) = l.strip_prefix("Unable to locate package ") {
            return Some(rest.trim().to_string());
        }
        if let Some(rest) = l.strip_prefix("Package ") {
            if let Some(name) = rest.strip_suffix(" has no installation candidate") {
                return Some(name.trim().to_string());
            }
        }
        let rest = l.strip_prefix("Release '")?;
        let (_, rest) = rest.split_once("' for '")?;
        let (name, _) = rest.split_once('\'')?;
        Some(name.to_string())
    })
}

/// One view's apt, pointed at an empty dpkg status and a private archive directory.
pub struct Apt {
    config: suite::Config,
}

impl Apt {
    fn apt_get(&self) -> Command {
        let mut cmd = self.config.command("apt-get");
        cmd.args(["-qq", "-y", "--no-install-recommends"]);
        cmd
    }

    pub fn view(&self) -> View {
        self.config.view
    }

    /// The packages with all their dependencies, as apt would install them on an empty
    /// system. `name=version` pins a version. `newer` packages come from the view's newer
    /// suite (`name/unstable`), their dependencies from the base where it has them.
    pub fn resolve(&self, packages: &[String], newer: &[String]) -> Result<Vec<Deb>> {
        let view = self.view();
        let mut args: Vec<String> = packages.to_vec();
        match view.newer {
            // `name=version`, not `name/unstable`: with a release apt takes the
            // dependencies from that release too, libc6 included.
            Some(n) => args.extend(self.versions_in(n, newer)?),
            None => args.extend(newer.iter().cloned()),
        }
        let fail = |detail: String| BuildError::Resolve {
            packages: args.join(" "),
            suite: view.name(),
            detail,
        };
        let out = host::run(
            self.apt_get()
                .arg("--print-uris")
                .arg("install")
                .args(&args),
        )
        .map_err(|e| {
            let text = e.to_string();
            match missing_package(&text) {
                Some(package) => BuildError::NotInSuite {
                    package,
                    suite: view.name(),
                    locked: String::new(),
                },
                None => fail(text),
            }
        })?;
        let mut debs = parse_print_uris(&out).map_err(fail)?;
        let pinned: Vec<String> = debs
            .iter()
            .map(|d| format!("{}={}", d.name, d.version))
            .collect();
        let show = host::run(
            self.config
                .command("apt-cache")
                .args(["show", "--no-all-versions"])
                .args(&pinned),
        )
        .map_err(|e| fail(e.to_string()))?;
        let hashes = parse_sha256s(&show);
        let names: Vec<&str> = debs.iter().map(|d| d.name.as_str()).collect();
        let madison = host::run(self.config.command("apt-cache").arg("madison").args(&names))
            .map_err(|e| fail(e.to_string()))?;
        let archives = parse_madison(&madison);
        for d in &mut debs {
            let key = (d.name.clone(), d.version.clone());
            d.sha256 = hashes.get(&key).cloned().ok_or_else(|| {
                fail(format!(
                    "apt-cache lists no SHA256 for {} {}",
                    d.name, d.version
                ))
            })?;
            let found = archives.get(&key).cloned().unwrap_or_default();
            // The same file may sit in several archives; name the base suite's first.
            d.archive = found
                .iter()
                .find(|a| Suite::of_archive(a) == Some(view.base))
                .or(found.first())
                .cloned()
                .ok_or_else(|| {
                    fail(format!(
                        "apt-cache madison names no archive for {} {}",
                        d.name, d.version
                    ))
                })?;
        }
        Ok(debs)
    }
}

impl Apt {
    /// `name=version` of each package's version in `suite`, from apt-cache madison.
    fn versions_in(&self, suite: Suite, names: &[String]) -> Result<Vec<String>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let out = host::run(self.config.command("apt-cache").arg("madison").args(names))?;
        let found = parse_madison(&out);
        names
            .iter()
            .map(|name| {
                found
                    .iter()
                    .find(|((n, _), archives)| {
                        n == name && archives.iter().any(|a| Suite::of_archive(a) == Some(suite))
                    })
                    .map(|((n, v), _)| format!("{n}={v}"))
                    .ok_or_else(|| BuildError::NotInSuite {
                        package: name.clone(),
                        suite: suite.name().to_string(),
                        locked: String::new(),
                    })
            })
            .collect()
    }
}

/// The build's apts: one per [`View`], made and brought up to date on first use, all
/// fetching into one cache of .deb files (`<cache>/debs`).
pub struct Apts {
    cache: PathBuf,
    debs: PathBuf,
    transport: Vec<String>,
    /// Fetch the package lists even when they are fresh (`corral-build lock`).
    refresh: bool,
    open: std::cell::RefCell<BTreeMap<View, Rc<Apt>>>,
}

impl Apts {
    pub fn new(cache: &Path, refresh: bool) -> Result<Apts> {
        host::require("apt-get")?;
        let debs = cache.join("debs");
        fs::create_dir_all(debs.join("partial")).map_err(BuildError::write(&debs))?;
        let dump = host::run(Command::new("apt-config").arg("dump")).unwrap_or_default();
        Ok(Apts {
            cache: cache.to_path_buf(),
            debs,
            transport: suite::host_transport(&dump),
            refresh,
            open: Default::default(),
        })
    }

    /// The apt of `view`, its package lists fetched if they are missing or old.
    pub fn view(&self, view: View) -> Result<Rc<Apt>> {
        if let Some(apt) = self.open.borrow().get(&view) {
            return Ok(apt.clone());
        }
        let config = suite::Config::write(&self.cache, view, &self.transport)?;
        config.update(self.refresh)?;
        let apt = Rc::new(Apt { config });
        self.open.borrow_mut().insert(view, apt.clone());
        Ok(apt)
    }

    /// Path of a package in the cache.
    pub fn path(&self, deb: &Deb) -> PathBuf {
        self.debs.join(&deb.filename)
    }

    /// Ensures every package is in the cache with the right checksum. A cached file that
    /// does not match is deleted and fetched again. `progress` is told each package done.
    pub fn fetch_all(&self, debs: &[Deb], progress: &dyn Fn(&Deb)) -> Result<()> {
        let mut missing: BTreeMap<Suite, Vec<&Deb>> = BTreeMap::new();
        for deb in debs {
            let path = self.path(deb);
            if path.exists() {
                if sha256_file(&path)? == deb.sha256 {
                    progress(deb);
                    continue;
                }
                log::warn!(
                    "{} is corrupt in the cache; fetching it again",
                    path.display()
                );
                fs::remove_file(&path).map_err(BuildError::write(&path))?;
            }
            let suite = deb.suite().ok_or_else(|| BuildError::Download {
                package: deb.name.clone(),
                version: deb.version.clone(),
                detail: format!("{:?} is not an archive of a suite Corral uses", deb.archive),
            })?;
            missing.entry(suite).or_default().push(deb);
        }
        for (suite, debs) in missing {
            let apt = self.view(View::of(suite))?;
            // A few packages per apt-get call: few process starts, yet steady progress.
            for batch in debs.chunks(6) {
                let mut cmd = apt.config.command("apt-get");
                cmd.args(["-qq", "download"])
                    .args(batch.iter().map(|d| format!("{}={}", d.name, d.version)))
                    .current_dir(&self.debs);
                host::run(&mut cmd).map_err(|e| BuildError::Download {
                    package: batch
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    version: batch
                        .iter()
                        .map(|d| d.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    detail: e.to_string(),
                })?;
                for deb in batch {
                    let path = self.path(deb);
                    let actual = sha256_file(&path)?;
                    if actual != deb.sha256 {
                        let _ = fs::remove_file(&path);
                        return Err(BuildError::Checksum {
                            path,
                            expected: deb.sha256.clone(),
                            actual,
                        });
                    }
                    progress(deb);
                }
            }
        }
        Ok(())
    }
}

/// The sha256 of a file, in hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).map_err(BuildError::read(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(BuildError::read(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_uris_lines_become_packages_sorted_by_name() {
        let text = "'http://deb.debian.org/debian/pool/main/r/runc/runc_1.1.5%2bds1-1%2bdeb12u1_amd64.deb' runc_1.1.5+ds1-1+deb12u1_amd64.deb 2718440 SHA256:aa11\n\
                    'http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1%3a1.35.0-4%2bb1_amd64.deb' busybox-static_1%3a1.35.0-4+b1_amd64.deb 1000 MD5Sum:bb22\n\
                    W: a warning line\n";
        let debs = parse_print_uris(text).expect("parses");
        assert_eq!(debs.len(), 2, "MD5Sum lines count too");
        assert_eq!(debs[0].name, "busybox-static");
        assert_eq!(debs[0].version, "1:1.35.0-4+b1");
        assert_eq!(debs[0].filename, "busybox-static_1%3a1.35.0-4+b1_amd64.deb");
        assert_eq!(debs[1].size, 2718440);
    }

    #[test]
    fn a_line_that_does_not_parse_is_an_error() {
        let err =
            parse_print_uris("'http://x/y.deb' y.deb notasize MD5Sum:1\n").expect_err("bad size");
        assert!(err.contains("y.deb"), "{err}");
    }

    #[test]
    fn sha256s_come_from_apt_cache_paragraphs() {
        let text = "Package: runc\nVersion: 1.1.5\nMD5sum: 11\nSHA256: abc\n\nPackage: tini\nVersion: 0.19\nSHA256: def\n";
        let map = parse_sha256s(text);
        assert_eq!(map[&("runc".to_string(), "1.1.5".to_string())], "abc");
        assert_eq!(map[&("tini".to_string(), "0.19".to_string())], "def");
    }

    #[test]
    fn madison_names_the_archives_of_each_version() {
        let text = " runc | 1.3.6+ds1-1 | http://deb.debian.org/debian unstable/main amd64 Packages\n\
                     runc | 1.1.15+ds1-2+deb13u1 | http://deb.debian.org/debian-security trixie-security/main amd64 Packages\n\
                     runc | 1.1.15+ds1-2+deb13u1 | http://deb.debian.org/debian trixie/main amd64 Packages\n\
                     garbage\n";
        let map = parse_madison(text);
        assert_eq!(map.len(), 2);
        assert_eq!(
            map[&("runc".to_string(), "1.1.15+ds1-2+deb13u1".to_string())],
            ["trixie-security", "trixie"]
        );
    }

    #[test]
    fn a_package_missing_from_a_suite_is_named() {
        for (err, want) in [
            ("E: Unable to locate package dockr.io", "dockr.io"),
            (
                "E: Package docker.io has no installation candidate",
                "docker.io",
            ),
            ("E: Release 'unstable' for 'crunx' was not found", "crunx"),
        ] {
            assert_eq!(missing_package(err).as_deref(), Some(want), "{err}");
        }
        assert_eq!(missing_package("E: something else"), None);
    }

    #[test]
    fn upstream_versions_drop_epoch_revision_and_repack_suffix() {
        let mut d =
            parse_print_uris("'u' docker.io_26.1.5+dfsg1-9+deb13u1+b1_amd64.deb 1 SHA256:a\n")
                .expect("parses")
                .remove(0);
        assert_eq!(d.upstream_version(), "26.1.5");
        d.version = "1:1.37.0-6+b9".into();
        assert_eq!(d.upstream_version(), "1.37.0");
        d.version = "1.7.24~ds1-6".into();
        assert_eq!(d.upstream_version(), "1.7.24");
    }

    #[test]
    fn sha256_of_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        fs::write(&p, "abc").expect("write");
        assert_eq!(
            sha256_file(&p).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
