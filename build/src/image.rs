//! System images, declared in `images/<name>/image.yml` (one small file each, as
//! LinuxKit's `pkg/<name>/build.yml`): Debian packages, extra files, Corral binaries and
//! the runtime config. Unknown keys and contradictions are rejected when the build reads
//! the file, naming the file and the key.

use crate::error::{BuildError, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `images/<name>/image.yml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Must equal the folder's name.
    pub name: String,
    /// The Debian suite the packages come from (trixie unless said).
    #[serde(default)]
    pub suite: crate::apt::Suite,
    /// Debian packages, installed with their dependencies (no recommends).
    #[serde(default)]
    pub packages: Vec<String>,
    /// Packages taken from Debian unstable, their dependencies from `suite` wherever it
    /// has them (`apt install -t unstable`): the newest docker CLI in a trixie console.
    #[serde(default)]
    pub newer: Vec<String>,
    /// A user engine image: the package whose version names the engine
    /// (`docker-<major>.<minor>`, label `io.corral.engine`), normally docker.io.
    #[serde(default)]
    pub engine: Option<String>,
    /// Dependencies fetched but not unpacked (maintainer-script helpers).
    #[serde(default)]
    pub skip: Vec<String>,
    /// Packages named only to settle a dependency's alternatives (`systemd |
    /// systemd-standalone-sysusers`: the small one), resolved but never unpacked (but
    /// for a `dpkg_status` image, whose dependencies must all be there).
    #[serde(default)]
    pub choose: Vec<String>,
    /// Paths removed after unpacking.
    #[serde(default)]
    pub drop: Vec<String>,
    /// Files from the image's folder.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Corral's own binaries to put in /usr/bin (from the musl build).
    #[serde(default)]
    pub binaries: Vec<String>,
    /// Link every busybox applet (needs busybox-static in packages).
    #[serde(default)]
    pub busybox_applets: bool,
    /// Write the dpkg database (`/var/lib/dpkg/status`, the file lists), so that apt and
    /// dpkg manage the image's packages on the machine (`crate::dpkg`).
    #[serde(default)]
    pub dpkg_status: bool,
    /// Shipped as `dist/<name>.tar`, for machines to load when asked, rather than in the
    /// root and its seeded store (the Debian console).
    #[serde(default)]
    pub dist_only: bool,
    /// Symlinks made after the packages: `{path: /usr/sbin/iptables, target: xtables-nft-multi}`.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
    #[serde(default)]
    pub config: RuntimeConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Relative to the image's folder.
    pub src: String,
    /// Absolute path in the image.
    pub dest: String,
    /// Octal, as a string ("0644") so YAML does not read it as decimal.
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_mode() -> String {
    "0644".into()
}

/// A symlink made after the packages are unpacked, where Debian would run
/// update-alternatives (which never runs here); the root's `links:` and each image's.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Absolute path of the link.
    pub path: String,
    /// What it points to, as `ln -s` takes it.
    pub target: String,
}

impl LinkSpec {
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.path.starts_with('/') && !self.target.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "links: {:?} -> {:?}: the path must be absolute and the target not empty",
                self.path, self.target
            ))
        }
    }
}

/// The image's runtime defaults, as in an OCI image config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl FileSpec {
    pub fn mode_bits(&self) -> Option<u32> {
        u32::from_str_radix(self.mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
    }
}

impl ImageSpec {
    /// Reads and checks `<dir>/image.yml`.
    pub fn load(dir: &Path) -> Result<ImageSpec> {
        let path = dir.join("image.yml");
        let text = std::fs::read_to_string(&path).map_err(BuildError::read(&path))?;
        let spec: ImageSpec = yaml_serde::from_str(&text).map_err(|e| BuildError::Spec {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        spec.check(dir)
            .map_err(|detail| BuildError::Spec { path, detail })?;
        Ok(spec)
    }

    fn check(&self, dir: &Path) -> std::result::Result<(), String> {
        let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        if folder.as_deref() != Some(self.name.as_str()) {
            return Err(format!(
                "name is {:?} but the folder is {:?}; make them equal",
                self.name,
                folder.unwrap_or_default()
            ));
        }
        if let Some(e) = &self.engine {
            if !self.packages.contains(e) && !self.newer.contains(e) {
                return Err(format!(
                    "engine: {e:?} names the engine's version but is not in packages or newer; add it"
                ));
            }
        }
        if self.newer.iter().any(|p| self.packages.contains(p)) {
            return Err("a package is both in packages and in newer; keep one".into());
        }
        if self.suite == crate::apt::Suite::Unstable && !self.newer.is_empty() {
            return Err("newer: takes packages from unstable, which is already this image's suite; list them in packages".into());
        }
        if self.packages.is_empty() && self.files.is_empty() && self.binaries.is_empty() {
            return Err("the image is empty; list packages, files or binaries".into());
        }
        for f in &self.files {
            if !f.dest.starts_with('/') {
                return Err(format!("files: dest {:?} must be an absolute path", f.dest));
            }
            if f.mode_bits().is_none() {
                return Err(format!(
                    "files: mode {:?} of {} is not an octal mode like \"0644\"",
                    f.mode, f.dest
                ));
            }
            if !dir.join(&f.src).is_file() {
                return Err(format!(
                    "files: src {:?} is not a file in {}",
                    f.src,
                    dir.display()
                ));
            }
        }
        for l in &self.links {
            l.check()?;
        }
        if self.busybox_applets && !self.packages.iter().any(|p| p == "busybox-static") {
            return Err("busybox_applets needs busybox-static in packages".into());
        }
        for s in &self.skip {
            if self.packages.contains(s) {
                return Err(format!("{s:?} is both in packages and in skip; keep one"));
            }
        }
        for k in self.config.env.keys() {
            if k.is_empty() || k.contains('=') {
                return Err(format!("config.env: {k:?} is not a variable name"));
            }
        }
        Ok(())
    }

    /// The image's reference: `corral/<name>:<version>`.
    pub fn reference(&self, version: &str) -> String {
        format!("corral/{}:{version}", self.name)
    }
}

/// Every image folder under `images/`, sorted by name.
pub fn list(images_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(images_dir)
        .map_err(BuildError::read(images_dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("image.yml").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// What building one image needs.
pub struct ImageInputs<'a> {
    pub apts: &'a crate::apt::Apts,
    /// The package cache (for unpacked trees).
    pub cache: &'a Path,
    /// Where the staged root and the archive go.
    pub work: &'a Path,
    /// Corral's musl binaries.
    pub binaries: &'a Path,
    pub version: &'a str,
}

/// Builds `images/<name>` into `<work>/<name>.tar` from its resolved packages (see
/// [`resolve`]), unless its inputs are unchanged. The packages must be in the cache
/// already (`Apt::fetch_all`; `dist` fetches every package of the build in one step).
pub fn build(
    inputs: &ImageInputs,
    dir: &Path,
    spec: &ImageSpec,
    debs: &[crate::apt::Deb],
) -> Result<crate::docker_archive::Built> {
    use crate::stage::{fresh, mark, Fingerprint};
    use crate::{deb, docker_archive, rootfs};
    std::fs::create_dir_all(inputs.work).map_err(BuildError::write(inputs.work))?;
    let archive = inputs.work.join(format!("{}.tar", spec.name));
    let record = inputs.work.join(format!("{}.json", spec.name));
    let mut fp = Fingerprint::new("image");
    fp.text("spec", &format!("{spec:?}"))
        .text("version", inputs.version)
        .text("image.rs", include_str!("image.rs"))
        .text("docker_archive.rs", include_str!("docker_archive.rs"))
        .text("rootfs.rs", include_str!("rootfs.rs"))
        .text("dpkg.rs", include_str!("dpkg.rs"));
    for d in debs {
        fp.text(&d.name, &d.sha256);
    }
    for f in &spec.files {
        fp.file(&dir.join(&f.src))?;
    }
    for b in &spec.binaries {
        fp.file(&inputs.binaries.join(b))?;
    }
    let fingerprint = fp.finish();
    if fresh(&archive, &fingerprint) {
        if let Ok(built) = std::fs::read(&record)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(())
        {
            return Ok(built);
        }
    }
    let root = inputs.work.join(format!("{}.root", spec.name));
    rootfs::create(&root, rootfs::IMAGE_DIRS)?;
    // An image dpkg manages on the machine keeps its chosen alternatives too: apt
    // would otherwise find the dependency they settle unmet.
    let unpacked: Vec<&crate::apt::Deb> = debs
        .iter()
        .filter(|d| {
            !spec.skip.contains(&d.name) && (spec.dpkg_status || !spec.choose.contains(&d.name))
        })
        .collect();
    let mut trees = Vec::new();
    for d in unpacked {
        let file = inputs.apts.path(d);
        let tree = deb::unpack(inputs.cache, d, &file)?;
        rootfs::merge(&root, &tree)?;
        trees.push(crate::dpkg::Unpacked { deb: d, file, tree });
    }
    rootfs::drop_paths(&root, &spec.drop)?;
    if spec.dpkg_status {
        crate::dpkg::write(&root, &trees)?;
    }
    // ca-certificates' own script never runs: without its bundle, dockerd cannot pull
    // over TLS and the console's tools trust nobody.
    rootfs::ca_bundle(&root)?;
    if spec.busybox_applets {
        rootfs::busybox_links(&root, &["init", "linuxrc"])?;
    }
    for f in &spec.files {
        let src = dir.join(&f.src);
        let bytes = std::fs::read(&src).map_err(BuildError::read(&src))?;
        rootfs::write(&root, &f.dest, &bytes, f.mode_bits().unwrap_or(0o644))?;
    }
    for b in &spec.binaries {
        let src = inputs.binaries.join(b);
        let bytes = std::fs::read(&src).map_err(BuildError::read(&src))?;
        rootfs::write(&root, &format!("usr/bin/{b}"), &bytes, 0o755)?;
    }
    rootfs::links(&root, &spec.links)?;
    let mut config = spec.config.clone();
    // The labels `corral engine list` and `engine switch` read: the engine's name
    // (`docker-28.5`) and its Docker version (`28.5.2`).
    if let Some((name, version)) = engine_name(spec, debs) {
        use corral_user_docker::labels::{NAME_LABEL, VERSION_LABEL};
        config.labels.insert(NAME_LABEL.into(), name);
        config.labels.insert(VERSION_LABEL.into(), version);
    }
    let built = docker_archive::build(
        &root,
        &config,
        &spec.reference(inputs.version),
        inputs.work,
        &spec.name,
    )?;
    std::fs::remove_dir_all(&root).map_err(BuildError::write(&root))?;
    let json = serde_json::to_vec_pretty(&built).unwrap_or_default();
    std::fs::write(&record, json).map_err(BuildError::write(&record))?;
    mark(&archive, &fingerprint)?;
    Ok(built)
}

/// The apt view an image's packages are resolved in.
pub fn view(spec: &ImageSpec) -> crate::apt::View {
    crate::apt::View {
        base: spec.suite,
        newer: (!spec.newer.is_empty()).then_some(crate::apt::Suite::Unstable),
    }
}

/// The packages of an image, with dependencies (none when it lists no packages).
pub fn resolve(apts: &crate::apt::Apts, spec: &ImageSpec) -> Result<Vec<crate::apt::Deb>> {
    if spec.packages.is_empty() && spec.newer.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<String> = spec.packages.iter().chain(&spec.choose).cloned().collect();
    apts.view(view(spec))?.resolve(&wanted, &spec.newer)
}

/// An engine image's name and Docker version from its resolved packages:
/// (`docker-28.5`, `28.5.2`).
pub fn engine_name(spec: &ImageSpec, debs: &[crate::apt::Deb]) -> Option<(String, String)> {
    let package = spec.engine.as_ref()?;
    let deb = debs.iter().find(|d| &d.name == package)?;
    let version = deb.upstream_version().to_string();
    Some((corral_harness::engine_name(&version)?, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, yaml: &str) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("image.yml"), yaml).expect("write");
        std::fs::write(dir.join("motd"), "hi").expect("write");
        tmp
    }

    #[test]
    fn every_built_in_service_has_its_image_folder() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(repo.join("manager/os-config.yml")).expect("os-config");
        for line in text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image: corral/"))
        {
            let name = line.split(':').next().unwrap_or_default();
            let spec = ImageSpec::load(&repo.join("images").join(name))
                .expect("images/<name> exists and parses");
            assert_eq!(spec.name, name);
        }
        for dir in list(&repo.join("images")).expect("images/") {
            ImageSpec::load(&dir).expect("every image folder parses");
        }
    }

    #[test]
    fn a_full_spec_parses() {
        let tmp = folder(
            "console",
            "name: console\npackages: [openssh-server]\nskip: [adduser]\n\
             files: [{src: motd, dest: /etc/motd, mode: \"0600\"}]\nbinaries: [corral]\n\
             config:\n  entrypoint: [/usr/sbin/sshd, -D]\n  env: {PATH: /usr/bin}\n  labels: {io.rancher.os.scope: system}\n",
        );
        let spec = ImageSpec::load(&tmp.path().join("console")).expect("parses");
        assert_eq!(spec.files[0].mode_bits(), Some(0o600));
        assert_eq!(spec.config.entrypoint, ["/usr/sbin/sshd", "-D"]);
        assert_eq!(spec.reference("0.1.0"), "corral/console:0.1.0");
    }

    #[test]
    fn mistakes_are_rejected_with_the_key_and_the_fix() {
        let cases = [
            (
                "base",
                "name: other\npackages: [busybox-static]\n",
                "make them equal",
            ),
            ("base", "name: base\n", "the image is empty"),
            (
                "base",
                "name: base\npackages: [x]\npakages: [y]\n",
                "pakages",
            ),
            (
                "base",
                "name: base\nfiles: [{src: motd, dest: etc/motd}]\n",
                "absolute path",
            ),
            (
                "base",
                "name: base\nfiles: [{src: motd, dest: /etc/motd, mode: \"0999\"}]\n",
                "octal mode",
            ),
            (
                "base",
                "name: base\nfiles: [{src: nope, dest: /etc/motd}]\n",
                "is not a file",
            ),
            (
                "base",
                "name: base\npackages: [a]\nskip: [a]\n",
                "both in packages and in skip",
            ),
            (
                "base",
                "name: base\npackages: [a]\nconfig: {env: {\"A=B\": c}}\n",
                "not a variable name",
            ),
        ];
        for (name, yaml, want) in cases {
            let tmp = folder(name, yaml);
            let err = ImageSpec::load(&tmp.path().join(name)).expect_err(yaml);
            let text = err.to_string();
            assert!(text.contains(want), "{yaml}: {text}");
            assert!(text.contains("image.yml"), "names the file: {text}");
        }
    }
}
