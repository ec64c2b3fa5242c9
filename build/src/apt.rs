//! Debian packages through the host's apt: resolve a package set with its dependencies
//! against an empty dpkg status (so nothing installed on the build host counts), and fetch
//! the .deb files into a cache, each checked against the sha256 apt publishes.

use crate::error::{BuildError, Result};
use crate::host;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One resolved package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deb {
    pub name: String,
    pub version: String,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
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
            })
        })();
        debs.push(parsed.ok_or_else(|| format!("unexpected line from apt-get: {line}"))?);
    }
    debs.sort();
    Ok(debs)
}

/// (package, version) -> SHA256 from `apt-cache show` paragraphs.
pub fn parse_sha256s(text: &str) -> std::collections::BTreeMap<(String, String), String> {
    let mut map = std::collections::BTreeMap::new();
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

/// apt, pointed at an empty dpkg status and a private archive cache.
pub struct Apt {
    cache: PathBuf,
    status: PathBuf,
    /// An archive directory that stays empty: `--print-uris` leaves out packages already
    /// in the archive directory, so resolving against the real cache would hide them.
    empty_archives: PathBuf,
}

impl Apt {
    pub fn new(cache: &Path) -> Result<Apt> {
        host::require("apt-get")?;
        let dir = cache.join("debs");
        fs::create_dir_all(dir.join("partial")).map_err(BuildError::write(&dir))?;
        let empty_archives = cache.join("resolve-archives");
        fs::create_dir_all(empty_archives.join("partial"))
            .map_err(BuildError::write(&empty_archives))?;
        let status = cache.join("empty-dpkg-status");
        if !status.exists() {
            fs::write(&status, "").map_err(BuildError::write(&status))?;
        }
        Ok(Apt {
            cache: dir,
            status,
            empty_archives,
        })
    }

    fn apt_get(&self) -> Command {
        let mut cmd = Command::new("apt-get");
        cmd.arg("-o")
            .arg(format!("Dir::State::status={}", self.status.display()))
            .arg("-o")
            .arg(format!(
                "Dir::Cache::archives={}",
                self.empty_archives.display()
            ))
            .args(["-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"])
            .args(["-qq", "-y", "--no-install-recommends"]);
        cmd
    }

    /// The packages with all their dependencies, as apt would install them on an empty
    /// system. `name=version` pins a version.
    pub fn resolve(&self, packages: &[String]) -> Result<Vec<Deb>> {
        let fail = |detail: String| BuildError::Resolve {
            packages: packages.join(" "),
            detail,
        };
        let out = host::run(
            self.apt_get()
                .arg("--print-uris")
                .arg("install")
                .args(packages),
        )
        .map_err(|e| fail(e.to_string()))?;
        let mut debs = parse_print_uris(&out).map_err(fail)?;
        let show = host::run(
            Command::new("apt-cache")
                .args(["show", "--no-all-versions"])
                .args(debs.iter().map(|d| format!("{}={}", d.name, d.version))),
        )
        .map_err(|e| fail(e.to_string()))?;
        let hashes = parse_sha256s(&show);
        for d in &mut debs {
            d.sha256 = hashes
                .get(&(d.name.clone(), d.version.clone()))
                .cloned()
                .ok_or_else(|| {
                    fail(format!(
                        "apt-cache lists no SHA256 for {} {}",
                        d.name, d.version
                    ))
                })?;
        }
        Ok(debs)
    }

    /// Path of a package in the cache.
    pub fn path(&self, deb: &Deb) -> PathBuf {
        self.cache.join(&deb.filename)
    }

    /// Ensures every package is in the cache with the right checksum. A cached file that
    /// does not match is deleted and fetched again. `progress` is told each package done.
    pub fn fetch_all(&self, debs: &[Deb], progress: &dyn Fn(&Deb)) -> Result<()> {
        let mut missing = Vec::new();
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
            missing.push(deb);
        }
        // A few packages per apt-get call: few process starts, yet steady progress.
        for batch in missing.chunks(6) {
            let mut cmd = Command::new("apt-get");
            cmd.args(["-qq", "-o", "APT::Sandbox::User=root", "download"])
                .args(batch.iter().map(|d| format!("{}={}", d.name, d.version)))
                .current_dir(&self.cache);
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
